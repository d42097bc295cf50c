/*
 * Registry configuration reader (regconfig.h), in four stages:
 *   1. libyaml events into a small bounded tree (aliases are references);
 *   2. yaml.v2's typing of scalars, and Go's value formatting and parsing
 *      (strconv, time.ParseDuration, Duration.String) where params.go
 *      relies on them;
 *   3. distribution's model of the storage section and its environment
 *      overrides (configuration/parser.go, configuration.go);
 *   4. the storage.s3direct parameters, checked in the order and with the
 *      rules of bridge/driver/params.go and presign_params.go.
 */
#include "regconfig.h"

#include "buf.h"
#include "err.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

extern char **environ;

#define MAX_KEYS 4096           /* entries of one parameters map */
#define MAX_STORAGE_KEYS 64     /* entries of the storage section */
#define MAX_ENV_PARTS 16        /* '_'-separated parts of a variable name */
#define MERGE_BUDGET (1L << 20) /* mapping entries visited through merges */
#define SHOW_MAX 64             /* bytes of a value shown in a message */

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define MIB (1LL << 20)

/* ======================================================================== */
/* 1. The tree                                                              */
/* ======================================================================== */

enum { YK_SCALAR = 1, YK_MAP, YK_SEQ, YK_ALIAS };

struct ynode {
	uint8_t kind;
	uint8_t is_str;        /* quoted, block or !!str: a string whatever it reads */
	uint32_t line;         /* 1-based */
	uint32_t first, last;  /* collections: children, index + 1 (0: none) */
	uint32_t next;         /* next sibling, index + 1 */
	uint32_t target;       /* alias: index of the anchored node */
	size_t off, len;       /* scalar: text in the arena (NUL-terminated) */
};

struct yanchor {
	char *name;
	uint32_t node;
};

struct ytree {
	struct ynode *nodes;
	size_t n, cap;
	s3d_buf text;
	struct yanchor *anchors;
	size_t nanchors, anchors_cap;
	size_t naliases;
	uint32_t root;          /* index + 1; 0: empty document */
	struct ytree *next;     /* the context's list of payload trees */
};

/* Why loading failed, for the caller to place. */
struct ywhy {
	unsigned long line, col;
	char text[200];
};

static void ytree_free(struct ytree *t)
{
	size_t i;

	for (i = 0; i < t->nanchors; i++)
		free(t->anchors[i].name);
	free(t->anchors);
	free(t->nodes);
	s3d_buf_cleanup(&t->text);
	memset(t, 0, sizeof(*t));
}

static int ytree_add(struct ytree *t, int kind, uint32_t line, uint32_t *idx)
{
	struct ynode *n;
	size_t cap;

	if (t->n >= S3D_REGCONFIG_MAX_NODES)
		return S3D_E_TOOBIG;
	if (t->n == t->cap) {
		cap = t->cap ? t->cap * 2 : 64;
		if (cap > S3D_REGCONFIG_MAX_NODES)
			cap = S3D_REGCONFIG_MAX_NODES;
		n = realloc(t->nodes, cap * sizeof(*n));
		if (!n)
			return S3D_E_NOMEM;
		t->nodes = n;
		t->cap = cap;
	}
	n = &t->nodes[t->n];
	memset(n, 0, sizeof(*n));
	n->kind = (uint8_t)kind;
	n->line = line;
	*idx = (uint32_t)t->n++;
	return S3D_OK;
}

static int ytree_anchor(struct ytree *t, const yaml_char_t *name, uint32_t node)
{
	struct yanchor *a;
	size_t cap;

	if (!name)
		return S3D_OK;
	if (t->nanchors >= S3D_REGCONFIG_MAX_ALIASES)
		return S3D_E_TOOBIG;
	if (t->nanchors == t->anchors_cap) {
		cap = t->anchors_cap ? t->anchors_cap * 2 : 16;
		a = realloc(t->anchors, cap * sizeof(*a));
		if (!a)
			return S3D_E_NOMEM;
		t->anchors = a;
		t->anchors_cap = cap;
	}
	t->anchors[t->nanchors].name = strdup((const char *)name);
	if (!t->anchors[t->nanchors].name)
		return S3D_E_NOMEM;
	t->anchors[t->nanchors++].node = node;
	return S3D_OK;
}

/* The node an anchor names (the latest definition), or -1. */
static long ytree_find_anchor(const struct ytree *t, const yaml_char_t *name)
{
	size_t i;

	for (i = t->nanchors; i > 0; i--)
		if (strcmp(t->anchors[i - 1].name, (const char *)name) == 0)
			return (long)t->anchors[i - 1].node;
	return -1;
}

#define TAG_PREFIX "tag:yaml.org,2002:"

/* yaml.v2: quoted and block scalars are strings, as are !!str, !!binary and
 * tags it cannot resolve; the other standard tags resolve as plain text. */
static int scalar_is_str(const yaml_event_t *ev)
{
	static const char *const resolvable[] = { "bool", "int", "float", "null", "timestamp" };
	const char *tag = (const char *)ev->data.scalar.tag;
	size_t i;

	if (!tag)
		return !ev->data.scalar.plain_implicit;
	if (strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) != 0)
		return 1;
	tag += strlen(TAG_PREFIX);
	for (i = 0; i < sizeof(resolvable) / sizeof(resolvable[0]); i++)
		if (strcmp(tag, resolvable[i]) == 0)
			return 0;
	return 1;
}

struct yloader {
	struct ytree *t;
	uint32_t stack[S3D_REGCONFIG_MAX_DEPTH];
	int depth;
	struct ywhy *why;
};

/* Links node idx under the open collection (or makes it the root). */
static void yload_link(struct yloader *l, uint32_t idx)
{
	struct ytree *t = l->t;
	struct ynode *parent;

	if (l->depth == 0) {
		if (!t->root)
			t->root = idx + 1;
		return;
	}
	parent = &t->nodes[l->stack[l->depth - 1]];
	if (parent->last)
		t->nodes[parent->last - 1].next = idx + 1;
	else
		parent->first = idx + 1;
	parent->last = idx + 1;
}

static int yload_event(struct yloader *l, const yaml_event_t *ev)
{
	struct ytree *t = l->t;
	uint32_t line = (uint32_t)ev->start_mark.line + 1, idx;
	long target;
	int rc;

	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		rc = ytree_add(t, YK_SCALAR, line, &idx);
		if (rc != S3D_OK)
			return rc;
		t->nodes[idx].is_str = (uint8_t)scalar_is_str(ev);
		t->nodes[idx].off = t->text.len;
		t->nodes[idx].len = ev->data.scalar.length;
		rc = s3d_buf_append(&t->text, ev->data.scalar.value, ev->data.scalar.length);
		if (rc == S3D_OK)
			rc = s3d_buf_appendc(&t->text, 0);
		if (rc == S3D_OK)
			rc = ytree_anchor(t, ev->data.scalar.anchor, idx);
		if (rc == S3D_OK)
			yload_link(l, idx);
		return rc;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (l->depth >= S3D_REGCONFIG_MAX_DEPTH) {
			snprintf(l->why->text, sizeof(l->why->text),
				 "nested deeper than %d levels", S3D_REGCONFIG_MAX_DEPTH);
			l->why->line = line;
			return S3D_E_TOOBIG;
		}
		rc = ytree_add(t, ev->type == YAML_MAPPING_START_EVENT ? YK_MAP : YK_SEQ, line, &idx);
		if (rc == S3D_OK)
			rc = ytree_anchor(t, ev->type == YAML_MAPPING_START_EVENT ?
					     ev->data.mapping_start.anchor :
					     ev->data.sequence_start.anchor, idx);
		if (rc != S3D_OK)
			return rc;
		yload_link(l, idx);
		l->stack[l->depth++] = idx;
		return S3D_OK;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (l->depth > 0)
			l->depth--;
		return S3D_OK;
	case YAML_ALIAS_EVENT:
		if (++t->naliases > S3D_REGCONFIG_MAX_ALIASES) {
			snprintf(l->why->text, sizeof(l->why->text), "more than %d aliases",
				 S3D_REGCONFIG_MAX_ALIASES);
			l->why->line = line;
			return S3D_E_TOOBIG;
		}
		target = ytree_find_anchor(t, ev->data.alias.anchor);
		if (target < 0) {
			snprintf(l->why->text, sizeof(l->why->text), "unknown anchor '%.64s'",
				 (const char *)ev->data.alias.anchor);
			l->why->line = line;
			return S3D_E_INVAL;
		}
		rc = ytree_add(t, YK_ALIAS, line, &idx);
		if (rc != S3D_OK)
			return rc;
		t->nodes[idx].target = (uint32_t)target;
		yload_link(l, idx);
		return S3D_OK;
	default:
		return S3D_OK;
	}
}

/* Loads the first document of data into t (zeroed by the caller). */
static int ytree_load(struct ytree *t, const uint8_t *data, size_t len, struct ywhy *why)
{
	struct yloader l;
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = S3D_OK, done = 0;

	memset(&l, 0, sizeof(l));
	l.t = t;
	l.why = why;
	memset(why, 0, sizeof(*why));
	s3d_buf_init(&t->text, 2 * len + S3D_REGCONFIG_MAX_NODES + 64);
	if (!yaml_parser_initialize(&p))
		return S3D_E_NOMEM;
	yaml_parser_set_input_string(&p, data, len);
	while (rc == S3D_OK && !done) {
		if (!yaml_parser_parse(&p, &ev)) {
			if (p.error == YAML_MEMORY_ERROR) {
				rc = S3D_E_NOMEM;
				break;
			}
			why->line = (unsigned long)p.problem_mark.line + 1;
			why->col = (unsigned long)p.problem_mark.column + 1;
			if (p.context)
				snprintf(why->text, sizeof(why->text),
					 "YAML: %s %s started at line %lu",
					 p.problem ? p.problem : "syntax error", p.context,
					 (unsigned long)p.context_mark.line + 1);
			else
				snprintf(why->text, sizeof(why->text), "YAML: %s",
					 p.problem ? p.problem : "syntax error");
			rc = S3D_E_INVAL;
			break;
		}
		if (ev.type == YAML_DOCUMENT_END_EVENT || ev.type == YAML_STREAM_END_EVENT)
			done = 1;
		else
			rc = yload_event(&l, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (rc == S3D_E_TOOBIG && !why->text[0])
		snprintf(why->text, sizeof(why->text), "more than %d YAML nodes",
			 S3D_REGCONFIG_MAX_NODES);
	return rc;
}

static const struct ynode *yderef(const struct ytree *t, uint32_t idx, uint32_t *out)
{
	if (t->nodes[idx].kind == YK_ALIAS)
		idx = t->nodes[idx].target;
	if (out)
		*out = idx;
	return &t->nodes[idx];
}

static const char *ytext(const struct ytree *t, const struct ynode *n)
{
	return (const char *)t->text.ptr + n->off;
}

/* ======================================================================== */
/* 2. Typing (gopkg.in/yaml.v2 resolve.go) and Go's parsers and formats     */
/* ======================================================================== */

enum { YV_NULL = 1, YV_BOOL, YV_INT, YV_UINT, YV_FLOAT, YV_STR, YV_MAP, YV_SEQ };

struct yval {
	int type;
	int b;
	int64_t i;
	uint64_t u;
	double f;
	const char *s;  /* scalars: the text (NUL-terminated) */
	size_t n;
};

/* strconv.ParseUint(s, base, 64) for base 0 (prefixes 0x 0o 0b 0) or 10. */
static int go_parse_uint(const char *s, size_t n, int base, uint64_t *out)
{
	uint64_t v = 0, d;
	size_t i = 0;

	if (n == 0)
		return 0;
	if (base == 0) {
		base = 10;
		if (s[0] == '0') {
			if (n >= 3 && (s[1] | 0x20) == 'b')
				base = 2, i = 2;
			else if (n >= 3 && (s[1] | 0x20) == 'o')
				base = 8, i = 2;
			else if (n >= 3 && (s[1] | 0x20) == 'x')
				base = 16, i = 2;
			else
				base = 8, i = 1;
		}
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
			d = (uint64_t)((c | 0x20) - 'a' + 10);
		else
			return 0;
		if (d >= (uint64_t)base)
			return 0;
		if (v > (UINT64_MAX - d) / (uint64_t)base)
			return 0;
		v = v * (uint64_t)base + d;
	}
	*out = v;
	return 1;
}

/* strconv.ParseInt(s, base, 64). */
static int go_parse_int(const char *s, size_t n, int base, int64_t *out)
{
	uint64_t u;
	int neg = 0;

	if (n == 0)
		return 0;
	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		s++;
		n--;
	}
	if (!go_parse_uint(s, n, base, &u))
		return 0;
	if (!neg && u > (uint64_t)INT64_MAX)
		return 0;
	if (neg && u > (uint64_t)INT64_MAX + 1)
		return 0;
	*out = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 1;
}

/* yaml.v2's float pattern: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static int yaml_float_syntax(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	if (i < n && s[i] == '.') {
		for (i++, d = 0; i < n && isdigit((unsigned char)s[i]); i++)
			d++;
		if (!d)
			return 0;
	} else {
		for (d = 0; i < n && isdigit((unsigned char)s[i]); i++)
			d++;
		if (!d)
			return 0;
		if (i < n && s[i] == '.')
			for (i++; i < n && isdigit((unsigned char)s[i]); i++)
				;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = 0; i < n && isdigit((unsigned char)s[i]); i++)
			d++;
		if (!d)
			return 0;
	}
	return i == n;
}

/* strconv.ParseFloat of text that passed yaml_float_syntax (NUL-terminated);
 * 0 when out of range (Go's ErrRange: yaml.v2 then keeps the string). */
static int go_parse_float(const char *s, double *out)
{
	char *end;
	double f;

	errno = 0;
	f = strtod(s, &end);
	if (*end || isinf(f))
		return 0;
	*out = f;
	return 1;
}

struct yword {
	const char *s;
	int type;
	int b;
};

static const struct yword ywords[] = {
	{ "y", YV_BOOL, 1 }, { "Y", YV_BOOL, 1 }, { "yes", YV_BOOL, 1 }, { "Yes", YV_BOOL, 1 },
	{ "YES", YV_BOOL, 1 }, { "true", YV_BOOL, 1 }, { "True", YV_BOOL, 1 },
	{ "TRUE", YV_BOOL, 1 }, { "on", YV_BOOL, 1 }, { "On", YV_BOOL, 1 }, { "ON", YV_BOOL, 1 },
	{ "n", YV_BOOL, 0 }, { "N", YV_BOOL, 0 }, { "no", YV_BOOL, 0 }, { "No", YV_BOOL, 0 },
	{ "NO", YV_BOOL, 0 }, { "false", YV_BOOL, 0 }, { "False", YV_BOOL, 0 },
	{ "FALSE", YV_BOOL, 0 }, { "off", YV_BOOL, 0 }, { "Off", YV_BOOL, 0 },
	{ "OFF", YV_BOOL, 0 }, { "", YV_NULL, 0 }, { "~", YV_NULL, 0 }, { "null", YV_NULL, 0 },
	{ "Null", YV_NULL, 0 }, { "NULL", YV_NULL, 0 },
	{ ".nan", YV_FLOAT, 0 }, { ".NaN", YV_FLOAT, 0 }, { ".NAN", YV_FLOAT, 0 },
	{ ".inf", YV_FLOAT, 1 }, { ".Inf", YV_FLOAT, 1 }, { ".INF", YV_FLOAT, 1 },
	{ "+.inf", YV_FLOAT, 1 }, { "+.Inf", YV_FLOAT, 1 }, { "+.INF", YV_FLOAT, 1 },
	{ "-.inf", YV_FLOAT, -1 }, { "-.Inf", YV_FLOAT, -1 }, { "-.INF", YV_FLOAT, -1 },
};

/* Numbers of a plain scalar whose first byte is a digit or sign. */
static int resolve_number(const char *s, size_t n, struct yval *v)
{
	char *plain = malloc(n + 1);
	size_t i, m = 0;

	if (!plain)
		return S3D_E_NOMEM;
	for (i = 0; i < n; i++)
		if (s[i] != '_')
			plain[m++] = s[i];
	plain[m] = 0;
	if (go_parse_int(plain, m, 0, &v->i))
		v->type = YV_INT;
	else if (go_parse_uint(plain, m, 0, &v->u))
		v->type = YV_UINT;
	else if (yaml_float_syntax(plain, m) && go_parse_float(plain, &v->f))
		v->type = YV_FLOAT;
	free(plain);
	return S3D_OK;
}

/* The value of node idx of t as yaml.v2 decodes it into an interface{}. */
static int yresolve(const struct ytree *t, uint32_t idx, struct yval *v)
{
	const struct ynode *nd = yderef(t, idx, NULL);
	const char *s;
	size_t i, n;
	char c;

	memset(v, 0, sizeof(*v));
	if (nd->kind == YK_MAP || nd->kind == YK_SEQ) {
		v->type = nd->kind == YK_MAP ? YV_MAP : YV_SEQ;
		return S3D_OK;
	}
	s = ytext(t, nd);
	n = nd->len;
	v->s = s;
	v->n = n;
	v->type = YV_STR;
	if (nd->is_str)
		return S3D_OK;
	c = n ? s[0] : 'N';
	if (!(c == '+' || c == '-' || isdigit((unsigned char)c) || (c && strchr("yYnNtTfFoO~.", c))))
		return S3D_OK;
	for (i = 0; i < sizeof(ywords) / sizeof(ywords[0]); i++) {
		if (strlen(ywords[i].s) == n && memcmp(ywords[i].s, s, n) == 0) {
			v->type = ywords[i].type;
			v->b = ywords[i].b;
			if (v->type == YV_FLOAT)
				v->f = v->b ? (v->b > 0 ? INFINITY : -INFINITY) : NAN;
			return S3D_OK;
		}
	}
	if (c == '.') {
		if (yaml_float_syntax(s, n) && go_parse_float(s, &v->f))
			v->type = YV_FLOAT;
		return S3D_OK;
	}
	if (c == '+' || c == '-' || isdigit((unsigned char)c))
		return resolve_number(s, n, v);
	return S3D_OK;
}

/* fmt.Sprint of a float64: the shortest digits that read back, in %e form
 * when the exponent is < -4 or >= 6 (strconv's 'g' with shortest
 * precision), else %f form. */
static void go_fmt_float(double f, char *out, size_t cap)
{
	char e[40], digs[24];
	int p, nd = 0, dp, exp10, i, decimals;
	size_t o = 0;
	const char *q;

	if (isnan(f)) {
		snprintf(out, cap, "NaN");
		return;
	}
	if (isinf(f)) {
		snprintf(out, cap, "%sInf", f > 0 ? "+" : "-");
		return;
	}
	if (f == 0) {
		snprintf(out, cap, "%s0", signbit(f) ? "-" : "");
		return;
	}
	for (p = 1; p <= 17; p++) {
		snprintf(e, sizeof(e), "%.*e", p - 1, f);
		if (strtod(e, NULL) == f)
			break;
	}
	q = e;
	if (*q == '-')
		q++;
	for (; *q && *q != 'e'; q++)
		if (isdigit((unsigned char)*q) && nd < (int)sizeof(digs) - 1)
			digs[nd++] = *q;
	while (nd > 1 && digs[nd - 1] == '0')
		nd--;
	digs[nd] = 0;
	exp10 = *q == 'e' ? atoi(q + 1) : 0;
	dp = exp10 + 1;
#define PUT(ch) do { if (o + 1 < cap) out[o++] = (ch); } while (0)
	if (f < 0)
		PUT('-');
	if (exp10 < -4 || exp10 >= 6) {
		PUT(digs[0]);
		if (nd > 1) {
			PUT('.');
			for (i = 1; i < nd; i++)
				PUT(digs[i]);
		}
		PUT('e');
		PUT(exp10 < 0 ? '-' : '+');
		snprintf(e, sizeof(e), "%02d", exp10 < 0 ? -exp10 : exp10);
		for (i = 0; e[i]; i++)
			PUT(e[i]);
	} else {
		if (dp > 0)
			for (i = 0; i < dp; i++)
				PUT(i < nd ? digs[i] : '0');
		else
			PUT('0');
		decimals = nd - dp > 0 ? nd - dp : 0;
		if (decimals > 0) {
			PUT('.');
			for (i = 0; i < decimals; i++) {
				int k = dp + i;
				PUT(k >= 0 && k < nd ? digs[k] : '0');
			}
		}
	}
#undef PUT
	out[o < cap ? o : cap - 1] = 0;
}

/* fmt.Sprint of a scalar value into out ("" for null, as params.go's
 * stringParam). */
static int go_sprint(const struct yval *v, s3d_buf *out)
{
	char tmp[64];

	switch (v->type) {
	case YV_NULL:
		return S3D_OK;
	case YV_BOOL:
		return s3d_buf_appendz(out, v->b ? "true" : "false");
	case YV_INT:
		return s3d_buf_printf(out, "%lld", (long long)v->i);
	case YV_UINT:
		return s3d_buf_printf(out, "%llu", (unsigned long long)v->u);
	case YV_FLOAT:
		go_fmt_float(v->f, tmp, sizeof(tmp));
		return s3d_buf_appendz(out, tmp);
	case YV_STR:
		return s3d_buf_append(out, v->s, v->n);
	}
	return S3D_E_INVAL;
}

/* A value for a message: printable, at most SHOW_MAX bytes, then "...". */
static void show_value(const struct yval *v, char *out, size_t cap)
{
	s3d_buf b;
	size_t i, n;

	if (cap == 0)
		return;
	if (v->type == YV_MAP || v->type == YV_SEQ || v->type == YV_NULL) {
		snprintf(out, cap, "%s", v->type == YV_MAP ? "a mapping" :
					 v->type == YV_SEQ ? "a list" : "null");
		return;
	}
	s3d_buf_init(&b, SHOW_MAX + 64);
	if (v->s) /* a scalar's own text, as written */
		(void)s3d_buf_append(&b, v->s, v->n < SHOW_MAX ? v->n : SHOW_MAX);
	else
		(void)go_sprint(v, &b);
	n = b.len < cap - 1 ? b.len : cap - 1;
	for (i = 0; i < n; i++)
		out[i] = (b.ptr[i] < 0x20 || b.ptr[i] == 0x7f) ? '?' : (char)b.ptr[i];
	out[n] = 0;
	if (v->s && v->n > SHOW_MAX && n + 4 <= cap)
		memcpy(out + n, "...", 4);
	s3d_buf_cleanup(&b);
}

/* strings.TrimSpace (ASCII white space). */
static void trim_space(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)(*s)[0]))
		(*s)++, (*n)--;
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* strconv.ParseBool. */
static int go_parse_bool(const char *s, size_t n, int *out)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
	size_t i;

	for (i = 0; i < 6; i++) {
		if (strlen(yes[i]) == n && memcmp(yes[i], s, n) == 0)
			return *out = 1, 1;
		if (strlen(no[i]) == n && memcmp(no[i], s, n) == 0)
			return *out = 0, 1;
	}
	return 0;
}

/* The digits of time.ParseDuration: leadingInt. */
static int dur_leading_int(const char **s, const char *end, uint64_t *x)
{
	uint64_t v = 0;

	for (; *s < end && **s >= '0' && **s <= '9'; (*s)++) {
		if (v > (1ULL << 63) / 10)
			return 0;
		v = v * 10 + (uint64_t)(**s - '0');
		if (v > (1ULL << 63))
			return 0;
	}
	*x = v;
	return 1;
}

/* time.ParseDuration, in nanoseconds. */
static int go_parse_duration(const char *s, size_t n, int64_t *out)
{
	static const struct { const char *name; uint64_t ns; } units[] = {
		{ "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "\xce\xbcs", 1000 },
		{ "ms", 1000000 }, { "s", 1000000000ULL }, { "m", 60000000000ULL },
		{ "h", 3600000000000ULL },
	};
	const char *end = s + n, *u;
	uint64_t d = 0, v, f, unit;
	double scale;
	int neg = 0, pre, post, overflow;
	size_t i, k, ul;

	if (s < end && (*s == '-' || *s == '+')) {
		neg = *s == '-';
		s++;
	}
	if (end - s == 1 && *s == '0')
		return *out = 0, 1;
	if (s == end)
		return 0;
	while (s < end) {
		f = 0;
		scale = 1;
		if (!(*s == '.' || (*s >= '0' && *s <= '9')))
			return 0;
		u = s;
		if (!dur_leading_int(&s, end, &v))
			return 0;
		pre = s != u;
		post = 0;
		if (s < end && *s == '.') {
			s++;
			u = s;
			overflow = 0;
			for (; s < end && *s >= '0' && *s <= '9'; s++) {
				if (overflow)
					continue;
				if (f > (uint64_t)INT64_MAX / 10) {
					overflow = 1;
					continue;
				}
				if (f * 10 + (uint64_t)(*s - '0') > (1ULL << 63)) {
					overflow = 1;
					continue;
				}
				f = f * 10 + (uint64_t)(*s - '0');
				scale *= 10;
			}
			post = s != u;
		}
		if (!pre && !post)
			return 0;
		for (i = 0; s + i < end && s[i] != '.' && !(s[i] >= '0' && s[i] <= '9'); i++)
			;
		if (i == 0)
			return 0;
		unit = 0;
		for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
			ul = strlen(units[k].name);
			if (ul == i && memcmp(units[k].name, s, i) == 0)
				unit = units[k].ns;
		}
		if (!unit)
			return 0;
		s += i;
		if (v > (1ULL << 63) / unit)
			return 0;
		v *= unit;
		if (f > 0) {
			v += (uint64_t)((double)f * ((double)unit / scale));
			if (v > (1ULL << 63))
				return 0;
		}
		d += v;
		if (d > (1ULL << 63))
			return 0;
	}
	if (neg) {
		*out = (int64_t)(0 - d);
		return 1;
	}
	if (d > (uint64_t)INT64_MAX)
		return 0;
	*out = (int64_t)d;
	return 1;
}

/* time.Duration.String. */
static void go_fmt_duration(int64_t d, char out[40])
{
	char buf[40];
	int w = (int)sizeof(buf) - 1, prec = 0, i, print;
	uint64_t u = d < 0 ? 0 - (uint64_t)d : (uint64_t)d;

	buf[w] = 0;
#define FRAC(p)                                                               \
	do {                                                                  \
		print = 0;                                                    \
		for (i = 0; i < (p); i++) {                                   \
			print = print || u % 10 != 0;                         \
			if (print)                                            \
				buf[--w] = (char)('0' + u % 10);              \
			u /= 10;                                              \
		}                                                             \
		if (print)                                                    \
			buf[--w] = '.';                                       \
	} while (0)
#define INT(x)                                                                \
	do {                                                                  \
		uint64_t x_ = (x);                                            \
		if (x_ == 0)                                                  \
			buf[--w] = '0';                                       \
		while (x_ > 0) {                                              \
			buf[--w] = (char)('0' + x_ % 10);                     \
			x_ /= 10;                                             \
		}                                                             \
	} while (0)
	if (u < 1000000000ULL) {
		buf[--w] = 's';
		if (u == 0) {
			buf[--w] = '0';
			snprintf(out, 40, "%s", buf + w);
			return;
		} else if (u < 1000) {
			prec = 0;
			buf[--w] = 'n';
		} else if (u < 1000000) {
			prec = 3;
			buf[--w] = '\xb5';
			buf[--w] = '\xc2';
		} else {
			prec = 6;
			buf[--w] = 'm';
		}
		FRAC(prec);
		INT(u);
	} else {
		buf[--w] = 's';
		FRAC(9);
		INT(u % 60);
		u /= 60;
		if (u > 0) {
			buf[--w] = 'm';
			INT(u % 60);
			u /= 60;
			if (u > 0) {
				buf[--w] = 'h';
				INT(u);
			}
		}
	}
	if (d < 0)
		buf[--w] = '-';
#undef FRAC
#undef INT
	snprintf(out, 40, "%s", buf + w);
}

/* ======================================================================== */
/* 3. distribution's storage section and its environment overrides         */
/* ======================================================================== */

/* A value: a node of a tree, or what an override made. */
struct vref {
	const struct ytree *t;  /* NULL: synthetic (is_map) or null */
	uint32_t node;
	int is_map;             /* an override created a nested map here */
	const char *env;        /* the variable it came from, or NULL (the file) */
	uint32_t line;
};

struct param {
	char *key;
	struct vref v;
};

struct plist {
	struct param *p;
	size_t n, cap;
};

struct sentry {
	char *name;
	int nil;                /* no parameters (null), as a nil map */
	struct plist params;
	const char *env;
	uint32_t line;
};

/* One '_'-separated part of a variable name. */
struct part {
	const char *s;
	size_t n;
};

struct rctx {
	const char *name;       /* the file, for messages */
	char **names;           /* names of the variables applied */
	size_t nnames;
	s3d_error *err;
	char *const *envp;
	struct ytree file;
	struct ytree *payloads; /* trees of environment values */
	struct sentry *st;      /* the storage section */
	size_t nst;
	long budget;            /* merge visits left */
	const struct sentry *s3;
	s3d_regconfig *out;
};

/* "<file>[:<line>]: <where>: <why>"; the file's directory is dropped when
 * the whole would not fit. */
static int fail_at(struct rctx *c, int rc, unsigned long line, const char *where,
		   const char *why)
{
	const char *file = c->name ? c->name : "(configuration)", *slash;
	char loc[32] = "";
	size_t need;

	if (line)
		snprintf(loc, sizeof(loc), ":%lu", line);
	need = strlen(file) + strlen(loc) + (where ? strlen(where) + 2 : 0) + 2 + strlen(why);
	if (c->err && need >= sizeof(c->err->message) && (slash = strrchr(file, '/')))
		file = slash + 1;
	return s3d_err_set(c->err, rc, "%s%s: %s%s%s", file, loc, where ? where : "",
			   where ? ": " : "", why);
}

static int failf(struct rctx *c, int rc, unsigned long line, const char *where,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int failf(struct rctx *c, int rc, unsigned long line, const char *where,
		 const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return fail_at(c, rc, line, where, why);
}

static void plist_free(struct plist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->p[i].key);
	free(l->p);
	memset(l, 0, sizeof(*l));
}

/* Sets key (copied) to v: replaces an equal key, else appends. */
static int plist_set(struct plist *l, const char *key, size_t klen, const struct vref *v)
{
	struct param *p;
	size_t i, cap;

	for (i = 0; i < l->n; i++) {
		if (strlen(l->p[i].key) == klen && memcmp(l->p[i].key, key, klen) == 0) {
			l->p[i].v = *v;
			return S3D_OK;
		}
	}
	if (l->n >= MAX_KEYS)
		return S3D_E_TOOBIG;
	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 16;
		p = realloc(l->p, cap * sizeof(*p));
		if (!p)
			return S3D_E_NOMEM;
		l->p = p;
		l->cap = cap;
	}
	l->p[l->n].key = strndup(key, klen);
	if (!l->p[l->n].key)
		return S3D_E_NOMEM;
	l->p[l->n++].v = *v;
	return S3D_OK;
}

static void storage_free(struct rctx *c)
{
	size_t i;

	for (i = 0; i < c->nst; i++) {
		free(c->st[i].name);
		plist_free(&c->st[i].params);
	}
	free(c->st);
	c->st = NULL;
	c->nst = 0;
}

/* A new empty entry named name (copied) at the end. */
static struct sentry *storage_add(struct rctx *c, const char *name, size_t n)
{
	struct sentry *st;

	if (c->nst >= MAX_STORAGE_KEYS)
		return NULL;
	st = realloc(c->st, (c->nst + 1) * sizeof(*st));
	if (!st)
		return NULL;
	c->st = st;
	memset(&st[c->nst], 0, sizeof(*st));
	st[c->nst].name = strndup(name, n);
	if (!st[c->nst].name)
		return NULL;
	return &st[c->nst++];
}

/* Text of a mapping key as a Go map[string] key: the scalar text; a null
 * plain scalar is "" (yaml.v2). NULL for a non-scalar key. */
static const char *key_text(const struct ytree *t, uint32_t k, size_t *n)
{
	const struct ynode *kn = yderef(t, k, NULL);
	struct yval v;

	if (kn->kind != YK_SCALAR)
		return NULL;
	if (yresolve(t, k, &v) == S3D_OK && v.type == YV_NULL) {
		*n = 0;
		return "";
	}
	*n = kn->len;
	return ytext(t, kn);
}

typedef int (*pair_fn)(struct rctx *c, void *ud, const struct ytree *t, uint32_t key,
		       uint32_t val);

/*
 * The entries of a mapping in yaml.v2's order: each pair in turn, a merge
 * key (<<) inserting the entries of its mapping, or of its list of mappings
 * from the last to the first (so the first wins), where it stands; the
 * consumer keeps the last value of a key.
 */
static int ymap_each(struct rctx *c, const struct ytree *t, uint32_t map, pair_fn fn,
		     void *ud, int depth)
{
	const struct ynode *m = yderef(t, map, &map), *kn, *vn;
	uint32_t k, v, items[256];
	size_t nitems, i;
	int rc;

	if (depth > S3D_REGCONFIG_MAX_DEPTH)
		return failf(c, S3D_E_TOOBIG, m->line, NULL, "merge keys (<<) nested too deep");
	for (k = m->first; k; k = t->nodes[v - 1].next) {
		v = t->nodes[k - 1].next;
		if (!v)
			break; /* cannot be: a mapping has pairs */
		if (--c->budget < 0)
			return failf(c, S3D_E_TOOBIG, m->line, NULL,
				     "merge keys (<<) expand to too many entries");
		kn = yderef(t, k - 1, NULL);
		if (kn->kind == YK_SCALAR && !kn->is_str && kn->len == 2 &&
		    memcmp(ytext(t, kn), "<<", 2) == 0) {
			vn = yderef(t, v - 1, NULL);
			if (vn->kind == YK_MAP) {
				rc = ymap_each(c, t, v - 1, fn, ud, depth + 1);
			} else if (vn->kind == YK_SEQ) {
				nitems = 0;
				for (i = vn->first; i; i = t->nodes[i - 1].next) {
					if (nitems == sizeof(items) / sizeof(items[0]))
						return failf(c, S3D_E_TOOBIG, vn->line, NULL,
							     "a merge key (<<) lists more than %zu mappings",
							     sizeof(items) / sizeof(items[0]));
					items[nitems++] = (uint32_t)(i - 1);
				}
				rc = S3D_OK;
				while (rc == S3D_OK && nitems > 0) {
					if (yderef(t, items[--nitems], NULL)->kind != YK_MAP)
						return failf(c, S3D_E_INVAL, vn->line, NULL,
							     "a merge key (<<) takes mappings only");
					rc = ymap_each(c, t, items[nitems], fn, ud, depth + 1);
				}
			} else {
				return failf(c, S3D_E_INVAL, vn->line, NULL,
					     "a merge key (<<) takes a mapping or a list of mappings");
			}
			if (rc != S3D_OK)
				return rc;
			continue;
		}
		rc = fn(c, ud, t, k - 1, v - 1);
		if (rc != S3D_OK)
			return rc;
	}
	return S3D_OK;
}

/* Finds the last value of one key of a mapping. */
struct find_key {
	const char *key;
	long found;  /* node index, -1 none */
	uint32_t line;
};

static int find_key_fn(struct rctx *c, void *ud, const struct ytree *t, uint32_t k, uint32_t v)
{
	struct find_key *f = ud;
	const char *s;
	size_t n;

	(void)c;
	s = key_text(t, k, &n);
	if (s && n == strlen(f->key) && memcmp(s, f->key, n) == 0) {
		f->found = (long)v;
		f->line = t->nodes[k].line;
	}
	return S3D_OK;
}

/* Collects a mapping of parameters into a plist. */
struct collect {
	struct plist *l;
	const char *where;
	const char *env;
};

static int collect_fn(struct rctx *c, void *ud, const struct ytree *t, uint32_t k, uint32_t v)
{
	struct collect *col = ud;
	struct vref r;
	const char *s;
	size_t n;
	int rc;

	s = key_text(t, k, &n);
	if (!s)
		return failf(c, S3D_E_INVAL, t->nodes[k].line, col->where,
			     "a parameter name must be a plain value, not a mapping or list");
	memset(&r, 0, sizeof(r));
	r.t = t;
	r.node = v;
	r.env = col->env;
	r.line = col->env ? 0 : t->nodes[k].line;
	rc = plist_set(col->l, s, n, &r);
	if (rc == S3D_E_TOOBIG)
		return failf(c, rc, t->nodes[k].line, col->where, "more than %d parameters", MAX_KEYS);
	return rc;
}

static int collect_params(struct rctx *c, const struct ytree *t, uint32_t map, const char *where,
			  const char *env, struct plist *l)
{
	struct collect col = { l, where, env };

	return ymap_each(c, t, map, collect_fn, &col, 0);
}

static int is_special_storage(const char *name)
{
	static const char *const special[] = { "maintenance", "cache", "delete", "redirect", "tag" };
	size_t i;

	for (i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (strcmp(name, special[i]) == 0)
			return 1;
	return 0;
}

/* The storage types (entries but the special ones), "a, b" into out. */
static size_t storage_types(const struct rctx *c, char *out, size_t cap, const struct sentry **one)
{
	size_t i, n = 0, o = 0;

	if (cap)
		out[0] = 0;
	for (i = 0; i < c->nst; i++) {
		if (is_special_storage(c->st[i].name))
			continue;
		if (one)
			*one = &c->st[i];
		if (o < cap)
			o += (size_t)snprintf(out + o, cap - o, "%s%.64s", n ? ", " : "", c->st[i].name);
		n++;
	}
	return n;
}

/* Storage.UnmarshalYAML: a mapping of driver -> parameters, or a driver
 * name alone. Replaces the storage of c. */
struct storage_build {
	const char *env;
};

static int storage_pair_fn(struct rctx *c, void *ud, const struct ytree *t, uint32_t k, uint32_t v)
{
	struct storage_build *sb = ud;
	const struct ynode *vn = yderef(t, v, NULL);
	struct sentry *e = NULL;
	struct yval val;
	char where[160];
	const char *s;
	size_t n, i;
	int rc;

	s = key_text(t, k, &n);
	if (!s)
		return failf(c, S3D_E_INVAL, t->nodes[k].line, sb->env ? sb->env : "storage",
			     "a storage driver name must be a plain value");
	if (sb->env)
		snprintf(where, sizeof(where), "%s", sb->env);
	else
		snprintf(where, sizeof(where), "storage.%.*s", (int)(n > 64 ? 64 : n), s);
	for (i = 0; i < c->nst; i++) {
		if (strlen(c->st[i].name) == n && memcmp(c->st[i].name, s, n) == 0) {
			e = &c->st[i];
			plist_free(&e->params);
			break;
		}
	}
	if (!e && !(e = storage_add(c, s, n)))
		return failf(c, S3D_E_TOOBIG, t->nodes[k].line, "storage", "too many entries");
	e->env = sb->env;
	e->line = sb->env ? 0 : t->nodes[k].line;
	e->nil = 0;
	if (vn->kind == YK_MAP)
		return collect_params(c, t, v, where, sb->env, &e->params);
	rc = yresolve(t, v, &val);
	if (rc != S3D_OK)
		return rc;
	if (val.type == YV_NULL) {
		e->nil = 1;
		return S3D_OK;
	}
	return failf(c, S3D_E_INVAL, vn->line, where, "must be a mapping of parameters");
}

static int storage_from(struct rctx *c, const struct ytree *t, long node, const char *env,
			uint32_t line)
{
	struct storage_build sb = { env };
	const struct ynode *nd;
	struct sentry *e;
	struct yval v;
	char types[256];
	int rc;

	storage_free(c);
	if (node < 0)
		return S3D_OK;
	nd = yderef(t, (uint32_t)node, NULL);
	if (nd->kind == YK_MAP) {
		rc = ymap_each(c, t, (uint32_t)node, storage_pair_fn, &sb, 0);
		if (rc != S3D_OK)
			return rc;
		if (storage_types(c, types, sizeof(types), NULL) > 1)
			return failf(c, S3D_E_INVAL, env ? 0 : line, env ? env : "storage",
				     "must provide exactly one storage type, provided: %s", types);
		return S3D_OK;
	}
	if (nd->kind == YK_SEQ)
		return failf(c, S3D_E_INVAL, env ? 0 : nd->line, env ? env : "storage",
			     "must be a mapping (driver: parameters) or a driver name, not a list");
	rc = yresolve(t, (uint32_t)node, &v);
	if (rc != S3D_OK || v.type == YV_NULL)
		return rc;
	e = storage_add(c, v.s, v.n);
	if (!e)
		return S3D_E_NOMEM;
	e->nil = 1;
	e->env = env;
	e->line = env ? 0 : nd->line;
	return S3D_OK;
}

/* ---- environment ---------------------------------------------------------- */

#define ENV_PREFIX "REGISTRY_STORAGE"

static int env_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t nx = strcspn(x, "="), ny = strcspn(y, "="), n = nx < ny ? nx : ny;
	int d = memcmp(x, y, n);

	if (d)
		return d;
	return nx < ny ? -1 : nx > ny;
}

/* A payload as YAML, in a tree kept until the end (value in *root, -1 for
 * an empty document). */
static int env_payload(struct rctx *c, const char *var, const char *value, long *root)
{
	struct ytree *t;
	struct ywhy why;
	size_t n = strlen(value);
	int rc;

	if (n > S3D_REGCONFIG_MAX_FILE)
		return failf(c, S3D_E_TOOBIG, 0, var, "value larger than %u bytes",
			     S3D_REGCONFIG_MAX_FILE);
	t = calloc(1, sizeof(*t));
	if (!t)
		return S3D_E_NOMEM;
	t->next = c->payloads;
	c->payloads = t;
	rc = ytree_load(t, (const uint8_t *)value, n, &why);
	if (rc == S3D_E_NOMEM)
		return rc;
	if (rc != S3D_OK)
		return failf(c, rc, 0, var, "%s (column %lu)", why.text, why.col);
	*root = t->root ? (long)t->root - 1 : -1;
	return S3D_OK;
}

/* ASCII strings.ToUpper(k) == part. */
static int upper_eq(const char *k, const struct part *part)
{
	size_t i;

	if (strlen(k) != part->n)
		return 0;
	for (i = 0; i < part->n; i++)
		if (toupper((unsigned char)k[i]) != (unsigned char)part->s[i])
			return 0;
	return 1;
}

static char *lower_dup(const struct part *part)
{
	char *d = strndup(part->s, part->n);
	size_t i;

	if (d)
		for (i = 0; i < part->n; i++)
			d[i] = (char)tolower((unsigned char)d[i]);
	return d;
}

/*
 * overwriteMap on a parameters map with the parts of a variable name after
 * the driver: one part sets the lower-cased key to the payload; more parts
 * go into a nested map, which for what we read is just "a map" (an existing
 * plain value swallows the override silently: reflection finds no field in
 * it).
 */
static int env_param(struct rctx *c, struct plist *l, const char *var, const char *value,
		     const struct part *parts, size_t np)
{
	struct vref r;
	struct yval v;
	char *key;
	size_t i;
	long root;
	int rc;

	memset(&r, 0, sizeof(r));
	r.env = var;
	if (np > 1) {
		for (i = 0; i < l->n; i++) {
			if (!upper_eq(l->p[i].key, &parts[0]))
				continue;
			if (l->p[i].v.is_map)
				return S3D_OK;
			if (l->p[i].v.t) {
				rc = yresolve(l->p[i].v.t, l->p[i].v.node, &v);
				if (rc != S3D_OK)
					return rc;
				if (v.type != YV_NULL)
					return S3D_OK; /* a map gets a key, a plain value nothing */
			}
			break;
		}
		r.is_map = 1;
	} else {
		rc = env_payload(c, var, value, &root);
		if (rc != S3D_OK)
			return rc;
		if (root >= 0) {
			r.t = c->payloads;
			r.node = (uint32_t)root;
		}
	}
	key = lower_dup(&parts[0]);
	if (!key)
		return S3D_E_NOMEM;
	rc = plist_set(l, key, parts[0].n, &r);
	free(key);
	if (rc == S3D_E_TOOBIG)
		return failf(c, rc, 0, var, "more than %d parameters", MAX_KEYS);
	return rc;
}

/* The storage entry for the first part: an existing one whose upper-cased
 * name is the part, else (or when its parameters are nil) a fresh one under
 * the lower-cased name. */
static int env_entry(struct rctx *c, const char *var, const struct part *part, int fresh,
		     struct sentry **out)
{
	struct sentry *e = NULL;
	char *lname;
	size_t i;

	for (i = 0; i < c->nst && !fresh; i++) {
		if (upper_eq(c->st[i].name, part)) {
			e = &c->st[i];
			break;
		}
	}
	if (e && !e->nil) {
		*out = e;
		return S3D_OK;
	}
	lname = lower_dup(part);
	if (!lname)
		return S3D_E_NOMEM;
	for (i = 0, e = NULL; i < c->nst; i++)
		if (strcmp(c->st[i].name, lname) == 0)
			e = &c->st[i];
	if (!e)
		e = storage_add(c, lname, part->n);
	free(lname);
	if (!e)
		return failf(c, S3D_E_TOOBIG, 0, var, "too many storage entries");
	plist_free(&e->params);
	e->nil = 0;
	e->env = var;
	e->line = 0;
	*out = e;
	return S3D_OK;
}

/* One REGISTRY_STORAGE* variable (var: its name, kept by c), as
 * distribution's parser applies it. */
static int env_apply(struct rctx *c, const char *var, const char *value)
{
	struct part parts[MAX_ENV_PARTS];
	struct sentry *e = NULL;
	const char *p = var + strlen(ENV_PREFIX);
	size_t np = 0, n;
	long root;
	int rc;

	if (*p == 0) {
		/* REGISTRY_STORAGE: the whole section */
		rc = env_payload(c, var, value, &root);
		return rc == S3D_OK ? storage_from(c, c->payloads, root, var, 0) : rc;
	}
	if (*p != '_')
		return S3D_OK; /* REGISTRY_STORAGEX...: no such field */
	p++;
	for (;;) {
		n = strcspn(p, "_");
		if (np == MAX_ENV_PARTS)
			break; /* deeper parts only nest further */
		parts[np].s = p;
		parts[np++].n = n;
		if (!p[n])
			break;
		p += n + 1;
	}
	rc = env_entry(c, var, &parts[0], np == 1, &e);
	if (rc != S3D_OK)
		return rc;
	if (np > 1)
		return env_param(c, &e->params, var, value, parts + 1, np - 1);
	/* REGISTRY_STORAGE_<TYPE>: that entry's parameters */
	rc = env_payload(c, var, value, &root);
	if (rc != S3D_OK)
		return rc;
	if (root < 0) {
		e->nil = 1;
		return S3D_OK;
	}
	if (yderef(c->payloads, (uint32_t)root, NULL)->kind != YK_MAP)
		return failf(c, S3D_E_INVAL, 0, var, "must be a mapping of parameters");
	return collect_params(c, c->payloads, (uint32_t)root, var, var, &e->params);
}

static int env_overrides(struct rctx *c)
{
	char *const *envp = c->envp ? c->envp : environ;
	const char **vars = NULL;
	size_t n = 0, i, k;
	int rc = S3D_OK;

	for (i = 0; envp && envp[i]; i++)
		if (strncmp(envp[i], ENV_PREFIX, strlen(ENV_PREFIX)) == 0)
			n++;
	if (n == 0)
		return S3D_OK;
	vars = calloc(n, sizeof(*vars));
	c->names = calloc(n, sizeof(*c->names));
	if (!vars || !c->names) {
		free(vars);
		return S3D_E_NOMEM;
	}
	for (i = 0, k = 0; envp[i] && k < n; i++)
		if (strncmp(envp[i], ENV_PREFIX, strlen(ENV_PREFIX)) == 0)
			vars[k++] = envp[i];
	qsort(vars, k, sizeof(*vars), env_cmp);
	for (i = 0; i < k && rc == S3D_OK; i++) {
		size_t nl = strcspn(vars[i], "=");
		const char *value = vars[i][nl] ? vars[i] + nl + 1 : "";

		/* the name alone, for messages: never the value */
		c->names[c->nnames] = strndup(vars[i], nl);
		if (!c->names[c->nnames]) {
			rc = S3D_E_NOMEM;
			break;
		}
		rc = env_apply(c, c->names[c->nnames++], value);
	}
	free(vars);
	return rc;
}

/* ======================================================================== */
/* 4. The parameters (bridge/driver/params.go, presign_params.go)           */
/* ======================================================================== */

static const char *const known_params[] = {
	"accesskey", "secretkey", "region", "regionendpoint", "forcepathstyle",
	"bucket", "encrypt", "keyid", "secure", "skipverify", "v4auth", "chunksize",
	"multipartcopychunksize", "multipartcopymaxconcurrency",
	"multipartcopythresholdsize", "rootdirectory", "storageclass", "useragent",
	"usedualstack", "accelerate", "usefipsendpoint", "objectacl", "loglevel",
	"partsinflight", "uploadmemory", "connecttimeout", "maxretries", "retrydeadline",
	"presign", "sessionindex", "presignexpiry", "sessionttl", "sweepinterval",
	"maxblobsize", "repoquota", "presignpartsize",
};

enum {
	STR_ENDPOINT, STR_REGION, STR_ACCESS, STR_SECRET, STR_TOKEN, STR_BUCKET, STR_ROOT,
	STR_UA, STR_CLASS, STR_ACL, STR_SSE, STR_KMS, STR_INDEX,
};

static const struct param *pfind(const struct rctx *c, const char *name)
{
	const struct plist *l = &c->s3->params;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->p[i].key, name) == 0)
			return &l->p[i];
	return NULL;
}

/* An error about parameter name (p may be NULL: missing). */
static int perr(struct rctx *c, const struct param *p, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int perr(struct rctx *c, const struct param *p, const char *name, const char *fmt, ...)
{
	char why[512], where[200];
	unsigned long line;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (p && p->v.env) {
		snprintf(where, sizeof(where), "storage.s3direct.%s (from %.96s)", name, p->v.env);
		line = 0;
	} else {
		snprintf(where, sizeof(where), "storage.s3direct.%s", name);
		line = p ? p->v.line : c->s3->line;
	}
	return fail_at(c, S3D_E_INVAL, line, where, why);
}

/* The value of p (null when absent or synthetic-null). */
static int pvalue(const struct param *p, struct yval *v)
{
	memset(v, 0, sizeof(*v));
	v->type = YV_NULL;
	if (!p)
		return S3D_OK;
	if (p->v.is_map) {
		v->type = YV_MAP;
		return S3D_OK;
	}
	if (!p->v.t)
		return S3D_OK;
	return yresolve(p->v.t, p->v.node, v);
}

/* stringParam: fmt.Sprint of any value, "" for none. A mapping or list
 * (which s3-aws would print as Go syntax) and a NUL byte are refused. */
static int str_param(struct rctx *c, const char *name, s3d_buf *out)
{
	const struct param *p = pfind(c, name);
	struct yval v;
	int rc = pvalue(p, &v);

	s3d_buf_reset(out);
	if (rc != S3D_OK)
		return rc;
	if (v.type == YV_MAP || v.type == YV_SEQ)
		return perr(c, p, name, "must be a single value, not %s",
			    v.type == YV_MAP ? "a mapping" : "a list");
	if (v.type == YV_STR && memchr(v.s, 0, v.n))
		return perr(c, p, name, "contains a NUL byte");
	rc = go_sprint(&v, out);
	if (rc == S3D_E_TOOBIG)
		return perr(c, p, name, "longer than %zu bytes", out->max);
	return rc;
}

/* boolParam: a boolean, or a string strconv.ParseBool reads. */
static int bool_param(struct rctx *c, const char *name, int def, int *out)
{
	const struct param *p = pfind(c, name);
	struct yval v;
	const char *s;
	size_t n;
	int rc = pvalue(p, &v);

	if (rc != S3D_OK)
		return rc;
	switch (v.type) {
	case YV_NULL:
		*out = def;
		return S3D_OK;
	case YV_BOOL:
		*out = v.b;
		return S3D_OK;
	case YV_STR:
		s = v.s;
		n = v.n;
		trim_space(&s, &n);
		if (go_parse_bool(s, n, out))
			return S3D_OK;
		break;
	}
	return perr(c, p, name, "should be a boolean (true or false)");
}

/* toInt64: integers, integral floats, decimal strings. */
static int to_int64(const struct yval *v, int64_t *out)
{
	const char *s;
	size_t n;

	switch (v->type) {
	case YV_INT:
		*out = v->i;
		return 1;
	case YV_UINT:
		if (v->u > (uint64_t)INT64_MAX)
			return 0;
		*out = (int64_t)v->u;
		return 1;
	case YV_FLOAT:
		if (isnan(v->f) || v->f != trunc(v->f) || v->f < -9223372036854775808.0 ||
		    v->f >= 9223372036854775808.0)
			return 0;
		*out = (int64_t)v->f;
		return 1;
	case YV_STR:
		s = v->s;
		n = v->n;
		trim_space(&s, &n);
		return go_parse_int(s, n, 10, out);
	}
	return 0;
}

/* intParam: toInt64, then lo <= v <= hi. */
static int int_param(struct rctx *c, const char *name, int64_t def, int64_t lo, int64_t hi,
		     int64_t *out)
{
	const struct param *p = pfind(c, name);
	char shown[SHOW_MAX + 8];
	struct yval v;
	int64_t x = def;
	int rc = pvalue(p, &v);

	if (rc != S3D_OK)
		return rc;
	if (v.type != YV_NULL && !to_int64(&v, &x)) {
		show_value(&v, shown, sizeof(shown));
		return perr(c, p, name, "must be an integer, %s invalid", shown);
	}
	if (x < lo || x > hi)
		return perr(c, p, name, "%lld should be a number between %lld and %lld (inclusive)",
			    (long long)x, (long long)lo, (long long)hi);
	*out = x;
	return S3D_OK;
}

/* durationParam: a Go duration string, or whole seconds; then lo..hi. */
static int dur_param(struct rctx *c, const char *name, int64_t def, int64_t lo, int64_t hi,
		     int64_t *out)
{
	const struct param *p = pfind(c, name);
	char shown[SHOW_MAX + 8], a[40], b[40], d[40];
	struct yval v;
	int64_t x = def, secs;
	const char *s;
	size_t n;
	int ok = 0, rc = pvalue(p, &v);

	if (rc != S3D_OK)
		return rc;
	if (v.type != YV_NULL) {
		if (v.type == YV_STR) {
			s = v.s;
			n = v.n;
			trim_space(&s, &n);
			ok = go_parse_duration(s, n, &x);
		}
		if (!ok) {
			if (!to_int64(&v, &secs) || secs > hi / NS_PER_S + 1 || secs < 0) {
				show_value(&v, shown, sizeof(shown));
				return perr(c, p, name,
					    "must be a duration (\"10s\", \"2m\") or a number of seconds, %s invalid",
					    shown);
			}
			x = secs * NS_PER_S;
		}
	}
	if (x < lo || x > hi) {
		go_fmt_duration(x, d);
		go_fmt_duration(lo, a);
		go_fmt_duration(hi, b);
		return perr(c, p, name, "%s should be between %s and %s", d, a, b);
	}
	*out = x;
	return S3D_OK;
}

/* Copies a buffer into owned string i. */
static int own(struct rctx *c, int i, const s3d_buf *b, const char **field)
{
	char *s = strndup(s3d_buf_str(b), b->len);

	if (!s)
		return S3D_E_NOMEM;
	if (c->out->strings_[i]) {
		explicit_bzero(c->out->strings_[i], strlen(c->out->strings_[i]));
		free(c->out->strings_[i]);
	}
	c->out->strings_[i] = s;
	if (field)
		*field = s;
	return S3D_OK;
}

static int own_z(struct rctx *c, int i, const char *z, const char **field)
{
	s3d_buf b;
	int rc;

	s3d_buf_init(&b, 1u << 20);
	rc = s3d_buf_appendz(&b, z);
	if (rc == S3D_OK)
		rc = own(c, i, &b, field);
	s3d_buf_cleanup_wipe(&b);
	return rc;
}

/* checkUnknown: every unknown name, sorted, in one message. */
static int check_unknown(struct rctx *c)
{
	const struct plist *l = &c->s3->params;
	const struct param *first = NULL;
	const char **bad;
	char names[200];
	size_t i, k, o = 0, nbad = 0;

	bad = calloc(l->n ? l->n : 1, sizeof(*bad));
	if (!bad)
		return S3D_E_NOMEM;
	for (i = 0; i < l->n; i++) {
		for (k = 0; k < sizeof(known_params) / sizeof(known_params[0]); k++)
			if (strcmp(l->p[i].key, known_params[k]) == 0)
				break;
		if (k < sizeof(known_params) / sizeof(known_params[0]))
			continue;
		bad[nbad++] = l->p[i].key;
		if (!first)
			first = &l->p[i];
	}
	if (nbad)
		qsort(bad, nbad, sizeof(*bad), env_cmp);
	names[0] = 0;
	for (i = 0; i < nbad && o < sizeof(names); i++)
		o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%.40s", i ? ", " : "", bad[i]);
	free(bad);
	if (!nbad)
		return S3D_OK;
	return failf(c, S3D_E_INVAL, first->v.env ? 0 : first->v.line,
		     first->v.env ? first->v.env : "storage.s3direct",
		     "unknown parameter%s %s (docs/configuration.md lists the known ones)",
		     nbad == 1 ? "" : "s", names);
}

/* ---- endpoints ------------------------------------------------------------- */

/*
 * S3 host names of github.com/aws/aws-sdk-go v1.55.5 (the version go.mod
 * pins, the tables s3-aws and params.go use): for every region of
 * endpoints.DefaultPartitions(), EndpointFor("s3", region) plain, dual-stack,
 * FIPS, and both; NULL where the SDK has none. Generated with a throwaway
 * Go program calling that resolver; the scheme follows `secure`.
 */
static const struct aws_region {
	const char *region, *plain, *dualstack, *fips, *fips_dualstack;
} aws_regions[] = {
#define R(r, p, d, f, fd) { r, p, d, f, fd }
#define STD(r) R(r, "s3." r ".amazonaws.com", "s3.dualstack." r ".amazonaws.com", \
		 "s3-fips." r ".amazonaws.com", "s3-fips.dualstack." r ".amazonaws.com")
	STD("af-south-1"), STD("ap-east-1"), STD("ap-northeast-1"), STD("ap-northeast-2"),
	STD("ap-northeast-3"), STD("ap-south-1"), STD("ap-south-2"), STD("ap-southeast-1"),
	STD("ap-southeast-2"), STD("ap-southeast-3"), STD("ap-southeast-4"), STD("ca-central-1"),
	STD("ca-west-1"),
	R("cn-north-1", "s3.cn-north-1.amazonaws.com.cn", "s3.dualstack.cn-north-1.amazonaws.com.cn",
	  "s3-fips.cn-north-1.amazonaws.com.cn", "s3-fips.cn-north-1.api.amazonwebservices.com.cn"),
	R("cn-northwest-1", "s3.cn-northwest-1.amazonaws.com.cn",
	  "s3.dualstack.cn-northwest-1.amazonaws.com.cn", "s3-fips.cn-northwest-1.amazonaws.com.cn",
	  "s3-fips.cn-northwest-1.api.amazonwebservices.com.cn"),
	STD("eu-central-1"), STD("eu-central-2"),
	R("eu-isoe-west-1", NULL, NULL, NULL, NULL),
	STD("eu-north-1"), STD("eu-south-1"), STD("eu-south-2"), STD("eu-west-1"),
	STD("eu-west-2"), STD("eu-west-3"), STD("il-central-1"), STD("me-central-1"),
	STD("me-south-1"), STD("sa-east-1"),
	R("us-east-1", "s3.amazonaws.com", "s3.dualstack.us-east-1.amazonaws.com",
	  "s3-fips.us-east-1.amazonaws.com", "s3-fips.dualstack.us-east-1.amazonaws.com"),
	STD("us-east-2"), STD("us-gov-east-1"), STD("us-gov-west-1"),
	R("us-iso-east-1", "s3.us-iso-east-1.c2s.ic.gov", NULL, "s3-fips.us-iso-east-1.c2s.ic.gov",
	  "s3-fips.dualstack.us-iso-east-1.c2s.ic.gov"),
	R("us-iso-west-1", "s3.us-iso-west-1.c2s.ic.gov", NULL, "s3-fips.us-iso-west-1.c2s.ic.gov",
	  "s3-fips.dualstack.us-iso-west-1.c2s.ic.gov"),
	R("us-isob-east-1", "s3.us-isob-east-1.sc2s.sgov.gov", NULL,
	  "s3-fips.us-isob-east-1.sc2s.sgov.gov", "s3-fips.dualstack.us-isob-east-1.sc2s.sgov.gov"),
	STD("us-west-1"), STD("us-west-2"),
#undef STD
#undef R
};

static const struct aws_region *find_region(const char *r)
{
	size_t i;

	for (i = 0; i < sizeof(aws_regions) / sizeof(aws_regions[0]); i++)
		if (strcmp(aws_regions[i].region, r) == 0)
			return &aws_regions[i];
	return NULL;
}

/* The SDK's test: a DNS label, no dots over https, not an IP address. */
static int host_compatible_bucket(const char *scheme, const char *b)
{
	size_t n = strlen(b), i, dots = 0, digits_only = 1;

	if (strcmp(scheme, "https") == 0 && strchr(b, '.'))
		return 0;
	if (n < 3 || n > 63 || strstr(b, ".."))
		return 0;
	for (i = 0; i < n; i++) {
		char ch = b[i];
		int alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');

		if (!(alnum || ((ch == '.' || ch == '-') && i > 0 && i + 1 < n)))
			return 0;
		if (ch == '.')
			dots++;
		else if (!(ch >= '0' && ch <= '9'))
			digits_only = 0;
	}
	/* ^(\d+\.){3}\d+$ */
	if (digits_only && dots == 3 && b[0] != '.' && b[n - 1] != '.')
		return 0;
	return 1;
}

struct endpoint_spec {
	const char *region_endpoint, *region, *bucket;
	int secure, force_path_style, dual_stack, fips, accelerate;
	const struct param *p_endpoint;
};

static int curl_part(CURLU *u, CURLUPart what, char **out)
{
	CURLUcode uc = curl_url_get(u, what, out, 0);

	if (uc == CURLUE_OK)
		return 1;
	*out = NULL;
	return 0;
}

/* accelerate's host rewrite (the SDK's): s3 / s3-* first label becomes
 * s3-accelerate, the region label goes. */
static int accelerate_host(struct rctx *c, const struct endpoint_spec *s, const char *host,
			   s3d_buf *out)
{
	char *labels[128], *copy = strdup(host), *save = NULL, *tok;
	size_t n = 0, i;
	int rc = S3D_OK, dropped = 0;

	if (!copy)
		return S3D_E_NOMEM;
	for (tok = strtok_r(copy, ".", &save); tok && n < 128; tok = strtok_r(NULL, ".", &save))
		labels[n++] = tok;
	if (n < 3) {
		free(copy);
		return perr(c, pfind(c, "accelerate"), "accelerate",
			    "cannot rewrite the endpoint host %.100s", host);
	}
	for (i = 0; i < n && rc == S3D_OK; i++) {
		if (i == 0 && (strcmp(labels[0], "s3") == 0 || strncmp(labels[0], "s3-", 3) == 0)) {
			rc = s3d_buf_appendz(out, "s3-accelerate");
			continue;
		}
		if (!dropped && i > 0 && i + 1 < n && strcmp(labels[i], s->region) == 0) {
			dropped = 1;
			continue;
		}
		if (out->len && out->ptr[out->len - 1] != '/')
			rc = s3d_buf_appendc(out, '.');
		if (rc == S3D_OK)
			rc = s3d_buf_appendz(out, labels[i]);
	}
	free(copy);
	return rc;
}

/* resolveEndpoint: URL and addressing style as the AWS SDK v1 computes them. */
static int resolve_endpoint(struct rctx *c, const struct endpoint_spec *s, s3d_buf *url,
			    int *virtual_hosted)
{
	const struct aws_region *r;
	const char *host_tbl, *scheme_def = s->secure ? "https" : "http";
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL,
	     *user = NULL, *pass = NULL, *frag = NULL, shown[SHOW_MAX + 8];
	s3d_buf raw;
	CURLU *u = NULL;
	int rc = S3D_OK, ok;

	s3d_buf_init(&raw, 8192);
	s3d_buf_reset(url);
	if (!s->region_endpoint[0]) {
		r = find_region(s->region);
		host_tbl = !r ? NULL : s->fips ? (s->dual_stack ? r->fips_dualstack : r->fips)
					       : (s->dual_stack ? r->dualstack : r->plain);
		if (!host_tbl) {
			rc = perr(c, pfind(c, "region"), "region",
				  "the AWS SDK has no S3 endpoint for region %.64s "
				  "(usedualstack=%s, usefipsendpoint=%s)",
				  s->region, s->dual_stack ? "true" : "false", s->fips ? "true" : "false");
			goto out;
		}
		rc = s3d_buf_printf(&raw, "%s://%s", scheme_def, host_tbl);
	} else if (!strstr(s->region_endpoint, "://")) {
		rc = s3d_buf_printf(&raw, "%s://%s", scheme_def, s->region_endpoint);
	} else {
		rc = s3d_buf_appendz(&raw, s->region_endpoint);
	}
	if (rc != S3D_OK)
		goto out;
	u = curl_url();
	if (!u) {
		rc = S3D_E_NOMEM;
		goto out;
	}
	ok = curl_url_set(u, CURLUPART_URL, s3d_buf_str(&raw), 0) == CURLUE_OK &&
	     curl_part(u, CURLUPART_SCHEME, &scheme) && curl_part(u, CURLUPART_HOST, &host) &&
	     host[0] && (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
	if (ok) {
		curl_part(u, CURLUPART_PORT, &port);
		curl_part(u, CURLUPART_PATH, &path);
		curl_part(u, CURLUPART_QUERY, &query);
		curl_part(u, CURLUPART_USER, &user);
		curl_part(u, CURLUPART_PASSWORD, &pass);
		curl_part(u, CURLUPART_FRAGMENT, &frag);
	}
	if (!ok || (path && path[0] && strcmp(path, "/") != 0) || query || user || pass || frag) {
		struct yval v = { .type = YV_STR, .s = s->region_endpoint,
				  .n = strlen(s->region_endpoint) };

		show_value(&v, shown, sizeof(shown));
		if (strchr(s->region_endpoint, '@')) /* user information: may be a secret */
			snprintf(shown, sizeof(shown), "(value not shown: it has user information)");
		rc = perr(c, s->p_endpoint, "regionendpoint",
			  "must be [http[s]://]host[:port]%s, %s invalid",
			  ok ? " without path, query or user" : "", shown);
		goto out;
	}
	if (s->accelerate) {
		char *plain = host;
		size_t hl = strlen(host);

		if (!host_compatible_bucket(scheme, s->bucket)) {
			rc = perr(c, pfind(c, "accelerate"), "accelerate",
				  "needs a bucket name usable as a host name label, %.64s is not",
				  s->bucket);
			goto out;
		}
		if (hl > 2 && host[0] == '[') { /* u.Hostname() drops IPv6 brackets */
			host[hl - 1] = 0;
			plain = host + 1;
		}
		rc = s3d_buf_printf(url, "%s://", scheme);
		if (rc == S3D_OK)
			rc = accelerate_host(c, s, plain, url);
		if (rc == S3D_OK && port)
			rc = s3d_buf_printf(url, ":%s", port);
		*virtual_hosted = 1;
		goto out;
	}
	rc = s3d_buf_printf(url, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
	*virtual_hosted = !s->force_path_style && host_compatible_bucket(scheme, s->bucket);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_free(user);
	curl_free(pass);
	curl_free(frag);
	curl_url_cleanup(u);
	s3d_buf_cleanup(&raw);
	return rc;
}

/* ---- credentials ------------------------------------------------------------- */

static const char *env_get(const struct rctx *c, const char *name)
{
	char *const *envp = c->envp ? c->envp : environ;
	size_t n = strlen(name), i;

	for (i = 0; envp && envp[i]; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

static const char *first_env(const struct rctx *c, const char *a, const char *b)
{
	const char *v = env_get(c, a);

	if (v && *v)
		return v;
	v = env_get(c, b);
	return v && *v ? v : "";
}

/* Never names a secret's value. */
static int credentials(struct rctx *c, s3d_buf *tmp)
{
	s3d_regconfig *o = c->out;
	s3d_client_config *cc = &o->driver.client;
	int rc, have_ak, have_sk;
	const char *ak, *sk, *tok;

	rc = str_param(c, "accesskey", tmp);
	if (rc != S3D_OK)
		return rc;
	have_ak = tmp->len > 0;
	if (have_ak && (rc = own(c, STR_ACCESS, tmp, &cc->access_key)) != S3D_OK)
		return rc;
	s3d_buf_reset(tmp);
	rc = str_param(c, "secretkey", tmp);
	if (rc != S3D_OK)
		return rc;
	have_sk = tmp->len > 0;
	if (have_sk && (rc = own(c, STR_SECRET, tmp, &cc->secret_key)) != S3D_OK)
		return rc;
	s3d_buf_cleanup_wipe(tmp);
	if (have_ak && have_sk) {
		o->cred_source = "parameters";
		return S3D_OK;
	}
	if (have_ak)
		return perr(c, pfind(c, "accesskey"), "accesskey",
			    "is set but secretkey is empty");
	if (have_sk)
		return perr(c, pfind(c, "secretkey"), "secretkey",
			    "is set but accesskey is empty");
	ak = first_env(c, "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY");
	sk = first_env(c, "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY");
	if (!*ak || !*sk)
		return fail_at(c, S3D_E_INVAL, c->s3->line, "storage.s3direct",
			       "no credentials: set the accesskey and secretkey parameters, or "
			       "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
	tok = env_get(c, "AWS_SESSION_TOKEN");
	if ((rc = own_z(c, STR_ACCESS, ak, &cc->access_key)) != S3D_OK ||
	    (rc = own_z(c, STR_SECRET, sk, &cc->secret_key)) != S3D_OK)
		return rc;
	if (tok && *tok && (rc = own_z(c, STR_TOKEN, tok, &cc->session_token)) != S3D_OK)
		return rc;
	o->cred_source = "environment";
	return S3D_OK;
}

/* ---- storageclass, objectacl, loglevel ---------------------------------------- */

static int storage_class(struct rctx *c, s3d_buf *tmp)
{
	static const char *const classes[] = {
		"NONE", "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
		"INTELLIGENT_TIERING", "OUTPOSTS", "GLACIER_IR", "EXPRESS_ONEZONE",
	};
	const struct param *p = pfind(c, "storageclass");
	char upper[64], shown[SHOW_MAX + 8];
	struct yval v;
	size_t i;
	int rc = pvalue(p, &v);

	if (rc != S3D_OK)
		return rc;
	if (v.type == YV_NULL) {
		s3d_buf_reset(tmp);
		rc = s3d_buf_appendz(tmp, "STANDARD");
		return rc == S3D_OK ? own(c, STR_CLASS, tmp, &c->out->driver.put.storage_class) : rc;
	}
	if (v.type == YV_STR && v.n < sizeof(upper)) {
		for (i = 0; i < v.n; i++)
			upper[i] = (char)toupper((unsigned char)v.s[i]);
		upper[v.n] = 0;
		for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
			if (strcmp(upper, classes[i]) != 0)
				continue;
			if (i == 0)
				return S3D_OK; /* NONE: no header */
			s3d_buf_reset(tmp);
			rc = s3d_buf_appendz(tmp, upper);
			return rc == S3D_OK ? own(c, STR_CLASS, tmp, &c->out->driver.put.storage_class)
					    : rc;
		}
	}
	show_value(&v, shown, sizeof(shown));
	return perr(c, p, "storageclass",
		    "must be one of NONE, STANDARD, REDUCED_REDUNDANCY, STANDARD_IA, ONEZONE_IA, "
		    "INTELLIGENT_TIERING, OUTPOSTS, GLACIER_IR, EXPRESS_ONEZONE; %s invalid", shown);
}

static int object_acl(struct rctx *c, s3d_buf *tmp)
{
	static const char *const acls[] = {
		"private", "public-read", "public-read-write", "authenticated-read",
		"aws-exec-read", "bucket-owner-read", "bucket-owner-full-control",
	};
	const struct param *p = pfind(c, "objectacl");
	char shown[SHOW_MAX + 8];
	struct yval v;
	size_t i;
	int rc = pvalue(p, &v);

	if (rc != S3D_OK || v.type == YV_NULL)
		return rc;
	if (v.type == YV_STR) {
		for (i = 0; i < sizeof(acls) / sizeof(acls[0]); i++) {
			if (strlen(acls[i]) != v.n || memcmp(acls[i], v.s, v.n) != 0)
				continue;
			if (i == 0)
				return S3D_OK; /* private: no header */
			s3d_buf_reset(tmp);
			rc = s3d_buf_appendz(tmp, acls[i]);
			return rc == S3D_OK ? own(c, STR_ACL, tmp, &c->out->driver.put.acl) : rc;
		}
	}
	show_value(&v, shown, sizeof(shown));
	return perr(c, p, "objectacl", "invalid value %s (private, public-read, "
		    "public-read-write, authenticated-read, aws-exec-read, bucket-owner-read, "
		    "bucket-owner-full-control)", shown);
}

static const char *log_level(struct rctx *c)
{
	static const char *const levels[] = {
		"off", "debug", "debugwithsigning", "debugwithhttpbody",
		"debugwithrequestretries", "debugwithrequesterrors", "debugwitheventstreambody",
	};
	const struct param *p = pfind(c, "loglevel");
	char low[40];
	struct yval v;
	size_t i;

	if (pvalue(p, &v) != S3D_OK || v.type != YV_STR || v.n >= sizeof(low))
		return "off";
	for (i = 0; i < v.n; i++)
		low[i] = (char)tolower((unsigned char)v.s[i]);
	low[v.n] = 0;
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(low, levels[i]) == 0)
			return levels[i];
	return "off";
}

/* ---- the whole section ------------------------------------------------------------ */

struct bools {
	int force_path_style, encrypt, secure, skip_verify, v4auth, dual_stack, accelerate, fips;
};

static int parse_bools(struct rctx *c, struct bools *b)
{
	int rc;

	if ((rc = bool_param(c, "forcepathstyle", 0, &b->force_path_style)) != S3D_OK ||
	    (rc = bool_param(c, "encrypt", 0, &b->encrypt)) != S3D_OK ||
	    (rc = bool_param(c, "secure", 1, &b->secure)) != S3D_OK ||
	    (rc = bool_param(c, "skipverify", 0, &b->skip_verify)) != S3D_OK ||
	    (rc = bool_param(c, "v4auth", 1, &b->v4auth)) != S3D_OK)
		return rc;
	if (!b->v4auth)
		return perr(c, pfind(c, "v4auth"), "v4auth",
			    "is false: s3direct signs only with AWS Signature Version 4 "
			    "(remove v4auth or set it to true)");
	if ((rc = bool_param(c, "usedualstack", 0, &b->dual_stack)) != S3D_OK ||
	    (rc = bool_param(c, "accelerate", 0, &b->accelerate)) != S3D_OK ||
	    (rc = bool_param(c, "usefipsendpoint", 0, &b->fips)) != S3D_OK)
		return rc;
	return S3D_OK;
}

static int parse_numbers(struct rctx *c)
{
	s3d_driver_config *d = &c->out->driver;
	int64_t chunk, copy_chunk, copy_conc, copy_thr, in_flight, upmem, retries, conn, deadline;
	int rc;

	if ((rc = int_param(c, "chunksize", 10 * MIB, 5 * MIB, 5120 * MIB, &chunk)) != S3D_OK ||
	    (rc = int_param(c, "multipartcopychunksize", 32 * MIB, 5 * MIB, 5120 * MIB,
			    &copy_chunk)) != S3D_OK ||
	    (rc = int_param(c, "multipartcopymaxconcurrency", 8, 1, INT64_MAX, &copy_conc)) != S3D_OK ||
	    (rc = int_param(c, "multipartcopythresholdsize", 32 * MIB, 0, 5120 * MIB,
			    &copy_thr)) != S3D_OK ||
	    (rc = int_param(c, "partsinflight", 2, 1, 64, &in_flight)) != S3D_OK ||

	    (rc = int_param(c, "maxretries", 6, 0, 100, &retries)) != S3D_OK ||
	    (rc = dur_param(c, "connecttimeout", 10 * NS_PER_S, NS_PER_MS, 600 * NS_PER_S,
			    &conn)) != S3D_OK ||
	    (rc = dur_param(c, "retrydeadline", 120 * NS_PER_S, NS_PER_S, 86400 * NS_PER_S,
			    &deadline)) != S3D_OK)
		return rc;
	if ((rc = int_param(c, "uploadmemory", in_flight * chunk, 0, INT64_MAX, &upmem)) != S3D_OK)
		return rc;
	d->part_size = (size_t)chunk;
	d->copy_part_size = copy_chunk;
	d->copy_concurrency = (int)(copy_conc > 64 ? 64 : copy_conc);
	d->copy_threshold = copy_thr < 5 * MIB ? 5 * MIB : copy_thr;
	d->parts_in_flight = (int)in_flight;
	d->upload_memory = upmem ? upmem : -1; /* 0: no shared limit */
	d->client.max_retries = (int)retries;
	d->client.retry_base_ms = 100; /* so that max_retries 0 means none */
	d->client.connect_timeout_ms = (long)(conn / NS_PER_MS);
	d->client.retry_deadline_ms = (long)(deadline / NS_PER_MS);
	d->redirect_expires = 20 * 60;
	return S3D_OK;
}

static int parse_presign(struct rctx *c, s3d_buf *tmp)
{
	s3d_regconfig *o = c->out;
	s3d_service_config *s = &o->service;
	int64_t url, ttl, sweep, maxblob, quota, part;
	int rc;

	if ((rc = bool_param(c, "presign", 0, &o->presign)) != S3D_OK ||
	    (rc = str_param(c, "sessionindex", tmp)) != S3D_OK)
		return rc;
	if (tmp->len == 0)
		rc = s3d_buf_appendz(tmp, "/var/lib/s3direct/sessions");
	if (rc != S3D_OK || (rc = own(c, STR_INDEX, tmp, &s->index.path)) != S3D_OK)
		return rc;
	if ((rc = dur_param(c, "presignexpiry", 3600 * NS_PER_S, NS_PER_S, 604800 * NS_PER_S,
			    &url)) != S3D_OK ||
	    (rc = dur_param(c, "sessionttl", 86400 * NS_PER_S, NS_PER_S, 365 * 86400 * NS_PER_S,
			    &ttl)) != S3D_OK ||
	    (rc = dur_param(c, "sweepinterval", 600 * NS_PER_S, 0, 7 * 86400 * NS_PER_S,
			    &sweep)) != S3D_OK ||
	    (rc = int_param(c, "maxblobsize", 0, 0, INT64_MAX, &maxblob)) != S3D_OK ||
	    (rc = int_param(c, "repoquota", 0, 0, INT64_MAX, &quota)) != S3D_OK ||
	    (rc = int_param(c, "presignpartsize", 64 * MIB, 5 * MIB, 5120 * MIB, &part)) != S3D_OK)
		return rc;
	s->url_expires = url / NS_PER_S;
	s->session_ttl = ttl / NS_PER_S;
	o->sweep_interval = sweep / NS_PER_S;
	s->max_blob_size = maxblob;
	s->repo_quota = quota;
	s->part_size = part;
	return S3D_OK;
}

/* parseParameters then parsePresignConfig, in their order. */
static int parse_s3direct(struct rctx *c)
{
	s3d_regconfig *o = c->out;
	s3d_driver_config *d = &o->driver;
	struct endpoint_spec es;
	struct bools b;
	s3d_buf tmp, endpoint, region, bucket, url, key_id;
	int rc;

	memset(&b, 0, sizeof(b));
	s3d_buf_init(&tmp, 64u * 1024u);
	s3d_buf_init(&endpoint, 8192);
	s3d_buf_init(&region, 1024);
	s3d_buf_init(&bucket, 1024);
	s3d_buf_init(&url, 16384);
	s3d_buf_init(&key_id, 8192);
	if ((rc = check_unknown(c)) != S3D_OK ||
	    (rc = str_param(c, "regionendpoint", &endpoint)) != S3D_OK ||
	    (rc = str_param(c, "region", &region)) != S3D_OK)
		goto out;
	if (endpoint.len == 0) {
		if (region.len == 0) {
			rc = perr(c, NULL, "region", "no region parameter provided");
			goto out;
		}
		if (!find_region(s3d_buf_str(&region))) {
			rc = perr(c, pfind(c, "region"), "region",
				  "invalid region provided: %.64s (an AWS region, or set regionendpoint)",
				  s3d_buf_str(&region));
			goto out;
		}
	} else if (region.len == 0) {
		rc = s3d_buf_appendz(&region, "us-east-1"); /* only the signature uses it */
		if (rc != S3D_OK)
			goto out;
	}
	if ((rc = own(c, STR_REGION, &region, &d->client.region)) != S3D_OK ||
	    (rc = str_param(c, "bucket", &bucket)) != S3D_OK)
		goto out;
	if (bucket.len == 0) {
		rc = perr(c, NULL, "bucket", "no bucket parameter provided");
		goto out;
	}
	if ((rc = own(c, STR_BUCKET, &bucket, &d->bucket)) != S3D_OK ||
	    (rc = parse_bools(c, &b)) != S3D_OK || (rc = parse_numbers(c)) != S3D_OK ||
	    (rc = str_param(c, "rootdirectory", &tmp)) != S3D_OK)
		goto out;
	{
		const char *r = s3d_buf_str(&tmp);
		size_t n = tmp.len;
		s3d_buf root;

		while (n && *r == '/')
			r++, n--;
		while (n && r[n - 1] == '/')
			n--;
		s3d_buf_init(&root, 64u * 1024u);
		rc = s3d_buf_append(&root, r, n);
		if (rc == S3D_OK)
			rc = own(c, STR_ROOT, &root, &d->root);
		s3d_buf_cleanup(&root);
		if (rc != S3D_OK)
			goto out;
	}
	d->client.skip_verify = b.skip_verify;
	if ((rc = storage_class(c, &tmp)) != S3D_OK || (rc = object_acl(c, &tmp)) != S3D_OK ||
	    (rc = str_param(c, "keyid", &key_id)) != S3D_OK)
		goto out;
	if (b.encrypt) {
		s3d_buf_reset(&tmp);
		rc = s3d_buf_appendz(&tmp, key_id.len ? "aws:kms" : "AES256");
		if (rc == S3D_OK)
			rc = own(c, STR_SSE, &tmp, &d->put.sse);
		if (rc == S3D_OK && key_id.len)
			rc = own(c, STR_KMS, &key_id, &d->put.sse_kms_key_id);
		if (rc != S3D_OK)
			goto out;
	}
	if ((rc = str_param(c, "useragent", &tmp)) != S3D_OK)
		goto out;
	{
		s3d_buf ua;

		s3d_buf_init(&ua, 64u * 1024u + 64);
		rc = s3d_buf_printf(&ua, "s3direct/%s%s%s", S3D_VERSION, tmp.len ? " " : "",
				    s3d_buf_str(&tmp));
		if (rc == S3D_OK)
			rc = own(c, STR_UA, &ua, &d->client.user_agent);
		s3d_buf_cleanup(&ua);
		if (rc != S3D_OK)
			goto out;
	}
	o->log_level = log_level(c);
	if ((rc = credentials(c, &tmp)) != S3D_OK)
		goto out;
	memset(&es, 0, sizeof(es));
	es.region_endpoint = s3d_buf_str(&endpoint);
	es.region = d->client.region;
	es.bucket = d->bucket;
	es.secure = b.secure;
	es.force_path_style = b.force_path_style;
	es.dual_stack = b.dual_stack;
	es.fips = b.fips;
	es.accelerate = b.accelerate;
	es.p_endpoint = pfind(c, "regionendpoint");
	if ((rc = resolve_endpoint(c, &es, &url, &d->client.virtual_hosted)) != S3D_OK ||
	    (rc = own(c, STR_ENDPOINT, &url, &d->client.endpoint)) != S3D_OK)
		goto out;
	rc = parse_presign(c, &tmp);
out:
	s3d_buf_cleanup_wipe(&tmp);
	s3d_buf_cleanup(&endpoint);
	s3d_buf_cleanup(&region);
	s3d_buf_cleanup(&bucket);
	s3d_buf_cleanup(&url);
	s3d_buf_cleanup(&key_id);
	return rc;
}

/* ======================================================================== */
/* The document                                                              */
/* ======================================================================== */

static int read_document(struct rctx *c)
{
	struct find_key fk;
	const struct ynode *root, *vn;
	struct yval v;
	const struct sentry *one = NULL;
	char types[256];
	int rc;

	if (!c->file.root)
		return fail_at(c, S3D_E_INVAL, 0, "version",
			       "unsupported version \"\" (the file is empty; the registry reads version 0.1)");
	root = yderef(&c->file, c->file.root - 1, NULL);
	if (root->kind != YK_MAP)
		return fail_at(c, S3D_E_INVAL, root->line, NULL,
			       "not a registry configuration (the document is not a mapping)");
	memset(&fk, 0, sizeof(fk));
	fk.key = "version";
	fk.found = -1;
	if ((rc = ymap_each(c, &c->file, c->file.root - 1, find_key_fn, &fk, 0)) != S3D_OK)
		return rc;
	memset(&v, 0, sizeof(v));
	if (fk.found >= 0) {
		vn = yderef(&c->file, (uint32_t)fk.found, NULL);
		if (vn->kind != YK_SCALAR)
			return fail_at(c, S3D_E_INVAL, fk.line, "version",
				       "must be a value (0.1), not a mapping or list");
		if ((rc = yresolve(&c->file, (uint32_t)fk.found, &v)) != S3D_OK)
			return rc;
	}
	if (fk.found < 0 || v.type == YV_NULL || v.n != 3 || memcmp(v.s, "0.1", 3) != 0) {
		char shown[SHOW_MAX + 8] = "";

		if (fk.found >= 0 && v.type != YV_NULL)
			show_value(&v, shown, sizeof(shown));
		return failf(c, S3D_E_INVAL, fk.found >= 0 ? fk.line : 0, "version",
			     "unsupported version \"%s\" (the registry reads version 0.1)", shown);
	}
	memset(&fk, 0, sizeof(fk));
	fk.key = "storage";
	fk.found = -1;
	if ((rc = ymap_each(c, &c->file, c->file.root - 1, find_key_fn, &fk, 0)) != S3D_OK ||
	    (rc = storage_from(c, &c->file, fk.found, NULL, fk.line)) != S3D_OK ||
	    (rc = env_overrides(c)) != S3D_OK)
		return rc;
	switch (storage_types(c, types, sizeof(types), &one)) {
	case 0:
		return fail_at(c, S3D_E_INVAL, 0, "storage", "no storage configuration provided");
	case 1:
		break;
	default:
		return failf(c, S3D_E_INVAL, 0, "storage",
			     "multiple storage drivers specified in configuration or environment: %s",
			     types);
	}
	if (strcmp(one->name, "s3direct") != 0)
		return failf(c, S3D_E_UNSUPPORTED, one->env ? 0 : one->line,
			     one->env ? one->env : "storage",
			     "the storage driver is %.64s, not s3direct: s3d reads the "
			     "configuration of an s3direct registry only", one->name);
	c->s3 = one;
	return parse_s3direct(c);
}

void s3d_regconfig_init(s3d_regconfig *c)
{
	if (c)
		memset(c, 0, sizeof(*c));
}

void s3d_regconfig_cleanup(s3d_regconfig *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < S3D_REGCONFIG_NSTR; i++) {
		if (!c->strings_[i])
			continue;
		if (i == STR_ACCESS || i == STR_SECRET || i == STR_TOKEN)
			explicit_bzero(c->strings_[i], strlen(c->strings_[i]));
		free(c->strings_[i]);
	}
	memset(c, 0, sizeof(*c));
}

int s3d_regconfig_parse(const char *name, const void *data, size_t len, char *const *envp,
			s3d_regconfig *out, s3d_error *err)
{
	struct rctx c;
	struct ywhy why;
	struct ytree *t;
	int rc;

	if (!out || (!data && len))
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	s3d_regconfig_init(out);
	memset(&c, 0, sizeof(c));
	c.name = name;
	c.err = err;
	c.envp = envp;
	c.out = out;
	c.budget = MERGE_BUDGET;
	if (len > S3D_REGCONFIG_MAX_FILE) {
		rc = failf(&c, S3D_E_TOOBIG, 0, NULL, "larger than %u bytes: not a registry configuration",
			   S3D_REGCONFIG_MAX_FILE);
		goto out;
	}
	rc = ytree_load(&c.file, data ? data : (const void *)"", len, &why);
	if (rc == S3D_E_NOMEM)
		s3d_err_set(err, rc, "out of memory");
	else if (rc != S3D_OK)
		fail_at(&c, rc, why.line, NULL, why.text);
	else
		rc = read_document(&c);
out:
	storage_free(&c);
	while ((t = c.payloads)) {
		c.payloads = t->next;
		ytree_free(t);
		free(t);
	}
	ytree_free(&c.file);
	while (c.nnames > 0)
		free(c.names[--c.nnames]);
	free(c.names);
	if (rc != S3D_OK)
		s3d_regconfig_cleanup(out);
	return rc;
}

int s3d_regconfig_load(const char *path, char *const *envp, s3d_regconfig *out, s3d_error *err)
{
	struct stat st;
	uint8_t *data = NULL;
	size_t got = 0;
	ssize_t n;
	int fd = -1, rc;

	if (!path || !out)
		return s3d_err_set(err, S3D_E_INVAL, "missing argument");
	s3d_regconfig_init(out);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (err)
			err->sys_errno = errno;
		rc = s3d_err_set(err, S3D_E_IO, "%.200s: cannot read the configuration: %s", path,
				 strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		if (err)
			err->sys_errno = EISDIR;
		rc = s3d_err_set(err, S3D_E_IO, "%.200s: is a directory, not a configuration file",
				 path);
		goto out;
	}
	data = malloc(S3D_REGCONFIG_MAX_FILE + 1);
	if (!data) {
		rc = s3d_err_set(err, S3D_E_NOMEM, "out of memory");
		goto out;
	}
	/* read one byte past the limit: a pipe or /proc file has no size */
	while (got <= S3D_REGCONFIG_MAX_FILE) {
		n = read(fd, data + got, S3D_REGCONFIG_MAX_FILE + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (err)
				err->sys_errno = errno;
			rc = s3d_err_set(err, S3D_E_IO, "%.200s: read failed: %s", path,
					 strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	rc = s3d_regconfig_parse(path, data, got, envp, out, err);
out:
	if (fd >= 0)
		close(fd);
	free(data);
	return rc;
}
