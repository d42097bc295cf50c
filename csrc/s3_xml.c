/*
 * S3's XML through libxml2: a guarded DOM load (no DOCTYPE, bounded element
 * count, no network, no entity substitution), local-name matching, and
 * xmlTextWriter for request bodies. See s3_xml.h for the contract.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strptime, timegm, strnlen */
#endif
#include "s3_xml.h"

#include "buf.h"

#include <libxml/SAX2.h>
#include <libxml/chvalid.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlstring.h>
#include <libxml/xmlwriter.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * No NOENT (entities stay unsubstituted), no DTDLOAD/DTDATTR, no HUGE.
 * IGNORE_ENC: S3 speaks UTF-8 only; a declared encoding would otherwise
 * route untrusted bytes through iconv. No NOBLANKS: its heuristic can drop
 * the text of <Key> </Key>, and " " is a valid key; blank nodes between
 * elements are skipped by the readers instead.
 */
#define PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOERROR | \
		       XML_PARSE_NOWARNING | XML_PARSE_IGNORE_ENC)

#define S3D_XML_CHUNK 4096 /* bytes per xmlParseChunk */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	xmlInitParser();
}

void s3d_xml_global_init(void)
{
	/* pthread_once cannot fail with a valid control; libxml2 would also
	 * initialize lazily, only not thread-safely. */
	(void)pthread_once(&xml_once, xml_init);
}

#if LIBXML_VERSION >= 21200
static void silent(void *ud, const xmlError *e)
#else
static void silent(void *ud, xmlErrorPtr e)
#endif
{
	(void)ud;
	(void)e;
}

/*
 * libxml2 reports errors that have no parser context (encoding conversion,
 * allocation) through the calling thread's handler, stderr by default. A
 * library must not print: for the length of one call, this thread's handler
 * is a silent one (libxml2's handlers are per thread), then the caller's
 * comes back.
 */
struct quiet {
	xmlStructuredErrorFunc fn;
	void *ctx;
};

static void quiet_begin(struct quiet *q)
{
	s3d_xml_global_init();
	q->fn = xmlStructuredError;
	q->ctx = xmlStructuredErrorContext;
	xmlSetStructuredErrorFunc(NULL, silent);
}

static void quiet_end(const struct quiet *q)
{
	xmlSetStructuredErrorFunc(q->ctx, q->fn);
}

/* ---- guarded document load ---- */

struct guard {
	int rc;        /* why the parse was stopped, S3D_OK if it was not */
	long nodes;    /* elements, attributes, namespace declarations so far */
};

static void stop(xmlParserCtxtPtr ctxt, int rc)
{
	struct guard *g = ctxt->_private;

	if (g->rc == S3D_OK)
		g->rc = rc;
	xmlStopParser(ctxt);
}

/* S3 never sends a DOCTYPE: refusing it here means no entity is ever declared. */
static void refuse_doctype(void *ctx, const xmlChar *name, const xmlChar *ext_id,
			   const xmlChar *sys_id)
{
	(void)name;
	(void)ext_id;
	(void)sys_id;
	stop(ctx, S3D_E_PROTOCOL);
}

static void refuse_entity(void *ctx, const xmlChar *name, int type,
			  const xmlChar *pub_id, const xmlChar *sys_id, xmlChar *content)
{
	(void)name;
	(void)type;
	(void)pub_id;
	(void)sys_id;
	(void)content;
	stop(ctx, S3D_E_PROTOCOL);
}

/* Bounds the tree: text can only sit between elements, comments and PIs are dropped. */
static void count_element(void *ctx, const xmlChar *local, const xmlChar *prefix,
			  const xmlChar *uri, int nns, const xmlChar **ns,
			  int nattr, int ndefaulted, const xmlChar **attr)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct guard *g = ctxt->_private;

	g->nodes += 1L + (nns > 0 ? nns : 0) + (nattr > 0 ? nattr : 0);
	if (g->nodes > S3D_XML_MAX_NODES) {
		stop(ctxt, S3D_E_TOOBIG);
		return;
	}
	/* S3 sends no attributes: none enter the tree (libxml2 2.9 appends
	 * each one by walking the list, quadratic in their number) */
	(void)nattr;
	(void)ndefaulted;
	xmlSAX2StartElementNs(ctx, local, prefix, uri, nns, ns, 0, 0, attr);
}

static int is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Bytes the parser holds unparsed: an incomplete tag, comment or PI. */
static size_t pending(xmlParserCtxtPtr ctxt)
{
	xmlParserInputPtr in = ctxt->input;

	return in && in->cur && in->end > in->cur ? (size_t)(in->end - in->cur) : 0;
}

/*
 * Pushes body in chunks. The push parser reads a start tag only once it is
 * complete, so a construct still unparsed after S3D_XML_MAX_MARKUP bytes is
 * refused before libxml2 2.9's quadratic attribute checks can run on it.
 */
static void push_all(xmlParserCtxtPtr ctxt, struct guard *g, const char *body, size_t len)
{
	size_t off, n;
	int last;

	for (off = 0; off < len && g->rc == S3D_OK && ctxt->wellFormed; off += n) {
		n = len - off < S3D_XML_CHUNK ? len - off : S3D_XML_CHUNK;
		last = off + n == len;
		(void)xmlParseChunk(ctxt, body + off, (int)n, last); /* verdict below */
		if (!last && pending(ctxt) > S3D_XML_MAX_MARKUP)
			stop(ctxt, S3D_E_TOOBIG);
	}
}

/* Hooks the SAX2 tree builder; called after xmlCtxtUseOptions, which rewrites some. */
static void guard_hooks(xmlParserCtxtPtr ctxt, struct guard *g)
{
	ctxt->_private = g;
	ctxt->sax->internalSubset = refuse_doctype;
	ctxt->sax->externalSubset = NULL;
	ctxt->sax->entityDecl = refuse_entity;
	ctxt->sax->startElementNs = count_element;
	ctxt->sax->comment = NULL; /* no node, no memory for them */
	ctxt->sax->processingInstruction = NULL;
	ctxt->sax->serror = silent;
}

static int parse_doc(const char *body, size_t len, xmlDocPtr *out)
{
	struct guard g = { S3D_OK, 0 };
	xmlParserCtxtPtr ctxt;
	struct quiet q;
	int rc;

	if (!body && len)
		return S3D_E_INVAL;
	while (len && is_blank((unsigned char)*body)) {
		body++;
		len--;
	}
	if (len == 0)
		return S3D_E_PROTOCOL;
	if (len > S3D_XML_MAX_BODY)
		return S3D_E_TOOBIG;
	quiet_begin(&q);
	ctxt = xmlCreatePushParserCtxt(NULL, NULL, NULL, 0, NULL);
	if (!ctxt) {
		quiet_end(&q);
		return S3D_E_NOMEM;
	}
	if (xmlCtxtUseOptions(ctxt, PARSE_OPTIONS) != 0 || !ctxt->sax) {
		rc = S3D_E_INVAL;
		goto out;
	}
	guard_hooks(ctxt, &g);
	push_all(ctxt, &g, body, len);
	if (g.rc != S3D_OK)
		rc = g.rc;
	else if (ctxt->errNo == XML_ERR_NO_MEMORY)
		rc = S3D_E_NOMEM;
	else if (!ctxt->wellFormed || !ctxt->myDoc || ctxt->instate != XML_PARSER_EOF)
		rc = S3D_E_PROTOCOL;
	else {
		*out = ctxt->myDoc;
		ctxt->myDoc = NULL;
		rc = S3D_OK;
	}
out:
	if (ctxt->myDoc)
		xmlFreeDoc(ctxt->myDoc);
	ctxt->myDoc = NULL;
	xmlFreeParserCtxt(ctxt);
	quiet_end(&q);
	return rc;
}

/* Element nodes only, local name only: the namespace is not looked at. */
static xmlNodePtr elem(xmlNodePtr n)
{
	while (n && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

static int is_named(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST name);
}

/* Parses body; *root is its root element, which must be called name (any name when NULL). */
static int load(const char *body, size_t len, const char *name, xmlDocPtr *doc,
		xmlNodePtr *root)
{
	int rc = parse_doc(body, len, doc);

	if (rc != S3D_OK)
		return rc;
	*root = xmlDocGetRootElement(*doc);
	if (!*root || (name && !is_named(*root, name))) {
		xmlFreeDoc(*doc);
		*doc = NULL;
		return S3D_E_PROTOCOL;
	}
	return S3D_OK;
}

/* The only child element of parent named name; NULL when absent, PROTOCOL when repeated. */
static int child(xmlNodePtr parent, const char *name, xmlNodePtr *out)
{
	xmlNodePtr c;

	*out = NULL;
	for (c = elem(parent->children); c; c = elem(c->next)) {
		if (!is_named(c, name))
			continue;
		if (*out)
			return S3D_E_PROTOCOL;
		*out = c;
	}
	return S3D_OK;
}

/* ---- leaf values ---- */

/* Character data of a leaf element into out (reset; bounded by out->max). */
static int leaf(xmlNodePtr n, s3d_buf *out)
{
	xmlNodePtr c;
	int rc = S3D_OK;

	s3d_buf_reset(out);
	for (c = n->children; c && rc == S3D_OK; c = c->next) {
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
			if (c->content)
				rc = s3d_buf_appendz(out, (const char *)c->content);
		} else if (c->type != XML_COMMENT_NODE && c->type != XML_PI_NODE) {
			rc = S3D_E_PROTOCOL;
		}
	}
	if (rc == S3D_OK && !out->ptr)
		rc = s3d_buf_append(out, "", 0); /* always a C string */
	return rc;
}

/* A leaf into a fixed field: never truncated. */
static int leaf_field(xmlNodePtr n, s3d_buf *tmp, char *dst, size_t cap)
{
	int rc = leaf(n, tmp);

	if (rc == S3D_OK)
		rc = s3d_strlcpy(dst, cap, s3d_buf_str(tmp), tmp->len);
	return rc;
}

/* A leaf with surrounding blanks removed (numbers, booleans, times). */
static int leaf_trim(xmlNodePtr n, s3d_buf *tmp, const char **out)
{
	int rc = leaf(n, tmp);
	char *s, *e;

	if (rc != S3D_OK)
		return rc;
	s = (char *)tmp->ptr;
	e = s + tmp->len;
	while (s < e && is_blank((unsigned char)*s))
		s++;
	while (e > s && is_blank((unsigned char)e[-1]))
		e--;
	*e = 0;
	*out = s;
	return S3D_OK;
}

static int leaf_int(xmlNodePtr n, s3d_buf *tmp, int64_t max, int64_t *out)
{
	const char *s;
	char *end;
	long long v;
	int rc = leaf_trim(n, tmp, &s);

	if (rc != S3D_OK)
		return rc;
	if (!isdigit((unsigned char)s[0])) /* no sign, no blank, not empty */
		return S3D_E_PROTOCOL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v > max)
		return S3D_E_PROTOCOL;
	*out = v;
	return S3D_OK;
}

static int leaf_bool(xmlNodePtr n, s3d_buf *tmp, int *out)
{
	const char *s;
	int rc = leaf_trim(n, tmp, &s);

	if (rc != S3D_OK)
		return rc;
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = 1;
	else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*out = 0;
	else
		return S3D_E_PROTOCOL;
	return S3D_OK;
}

static int leaf_time(xmlNodePtr n, s3d_buf *tmp, int64_t *out)
{
	const char *s;
	int rc = leaf_trim(n, tmp, &s);

	if (rc == S3D_OK && s3d_xml_parse_time(s, out) != S3D_OK)
		rc = S3D_E_PROTOCOL;
	return rc;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* EncodingType=url: S3 encodes like a query value ('+' is a space). In place. */
static int url_decode(s3d_buf *b)
{
	size_t i, j;
	int c, hi, lo;

	for (i = j = 0; i < b->len; i++, j++) {
		c = b->ptr[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= b->len)
				return S3D_E_PROTOCOL;
			hi = hexval(b->ptr[i + 1]);
			lo = hexval(b->ptr[i + 2]);
			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				return S3D_E_PROTOCOL; /* bad escape, or a NUL */
			c = hi << 4 | lo;
			i += 2;
		}
		b->ptr[j] = (uint8_t)c;
	}
	b->len = j;
	if (b->ptr)
		b->ptr[j] = 0;
	return S3D_OK;
}

/* Drops a UTF-8 sequence cut short at the end of s. */
static void utf8_cut(char *s)
{
	size_t i = strlen(s), k = 0;
	unsigned char lead;
	size_t need;

	while (i > 0 && k < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
		i--;
		k++;
	}
	if (i == 0)
		return;
	lead = (unsigned char)s[i - 1];
	need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
	if (need > k + 1)
		s[i - 1] = 0;
}

/* Error detail: truncation is fine here, on a character boundary. */
static int text_trunc(xmlNodePtr n, char *dst, size_t cap)
{
	xmlChar *s = xmlNodeGetContent(n);

	if (!s)
		return S3D_E_NOMEM;
	if ((size_t)snprintf(dst, cap, "%s", (const char *)s) >= cap)
		utf8_cut(dst);
	xmlFree(s);
	return S3D_OK;
}

/* Code, Message, RequestId (and Key as resource, for DeleteResult errors). */
static int fill_error(xmlNodePtr e, s3d_error *err, int key_as_resource)
{
	xmlNodePtr c;
	int rc = S3D_OK;

	if (!err)
		return S3D_OK;
	for (c = elem(e->children); c && rc == S3D_OK; c = elem(c->next)) {
		if (is_named(c, "Code"))
			rc = text_trunc(c, err->code, sizeof(err->code));
		else if (is_named(c, "Message"))
			rc = text_trunc(c, err->message, sizeof(err->message));
		else if (is_named(c, "RequestId"))
			rc = text_trunc(c, err->request_id, sizeof(err->request_id));
		else if (key_as_resource && is_named(c, "Key"))
			rc = text_trunc(c, err->resource, sizeof(err->resource));
	}
	return rc;
}

int s3d_xml_parse_error(const char *body, size_t len, s3d_error *err)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr root;
	s3d_error e;
	int rc = load(body, len, "Error", &doc, &root);

	if (rc != S3D_OK)
		return rc;
	if (err)
		e = *err;
	rc = fill_error(root, err ? &e : NULL, 0);
	if (rc == S3D_OK && err)
		*err = e;
	xmlFreeDoc(doc);
	return rc;
}

/* ---- list pages ---- */

enum {
	F_KEY = 1u << 0,
	F_ETAG = 1u << 1,
	F_SIZE = 1u << 2,
	F_MODIFIED = 1u << 3,
	F_INITIATED = 1u << 4,
	F_ID = 1u << 5,
	F_PARTNO = 1u << 6,
	F_CHECKSUM = 1u << 7,
};

static const struct {
	const char *name;
	unsigned field;
} entry_fields[] = {
	{ "Key", F_KEY },
	{ "ETag", F_ETAG },
	{ "Size", F_SIZE },
	{ "LastModified", F_MODIFIED },
	{ "Initiated", F_INITIATED },
	{ "UploadId", F_ID },
	{ "PartNumber", F_PARTNO },
	{ "ChecksumSHA256", F_CHECKSUM },
};

/* Per kind: root, entry element, fields read, fields required. */
static const struct list_shape {
	const char *root, *entry;
	unsigned fields, required;
} shapes[] = {
	[S3D_ENTRY_OBJECT] = { "ListBucketResult", "Contents",
			       F_KEY | F_ETAG | F_SIZE | F_MODIFIED, F_KEY },
	[S3D_ENTRY_UPLOAD] = { "ListMultipartUploadsResult", "Upload",
			       F_KEY | F_ID | F_INITIATED, F_KEY | F_ID },
	[S3D_ENTRY_PART] = { "ListPartsResult", "Part",
			     F_PARTNO | F_ETAG | F_SIZE | F_MODIFIED | F_CHECKSUM, F_PARTNO },
};

struct lst {
	int kind;
	int encoded;          /* EncodingType=url */
	const struct list_shape *shape;
	s3d_buf key, id, tmp;
	char etag[136];       /* sizeof(s3d_part.etag) */
	char checksum[64];    /* sizeof(s3d_part.checksum_sha256) */
	s3d_list_entry e;
};

static void lst_init(struct lst *L, int kind)
{
	memset(L, 0, sizeof(*L));
	L->kind = kind;
	L->shape = &shapes[kind];
	s3d_buf_init(&L->key, S3D_XML_KEY_MAX);
	s3d_buf_init(&L->id, S3D_XML_ID_MAX);
	s3d_buf_init(&L->tmp, 256); /* numbers, times, booleans */
}

static void lst_cleanup(struct lst *L)
{
	s3d_buf_cleanup(&L->key);
	s3d_buf_cleanup(&L->id);
	s3d_buf_cleanup(&L->tmp);
}

static unsigned field_of(xmlNodePtr c)
{
	size_t i;

	for (i = 0; i < sizeof(entry_fields) / sizeof(entry_fields[0]); i++)
		if (is_named(c, entry_fields[i].name))
			return entry_fields[i].field;
	return 0;
}

/* A key or prefix: non-empty, decoded when the page says so, never truncated. */
static int read_key(struct lst *L, xmlNodePtr n, s3d_buf *out)
{
	int rc = leaf(n, out);

	if (rc == S3D_OK && L->encoded)
		rc = url_decode(out);
	if (rc == S3D_OK && out->len > S3D_XML_KEY_MAX)
		rc = S3D_E_TOOBIG;
	if (rc == S3D_OK && out->len == 0)
		rc = S3D_E_PROTOCOL;
	return rc;
}

static int read_field(struct lst *L, xmlNodePtr c, unsigned f)
{
	int64_t v = 0;
	int rc;

	switch (f) {
	case F_KEY:
		return read_key(L, c, &L->key);
	case F_ETAG:
		return leaf_field(c, &L->tmp, L->etag, sizeof(L->etag));
	case F_CHECKSUM:
		return leaf_field(c, &L->tmp, L->checksum, sizeof(L->checksum));
	case F_ID:
		rc = leaf(c, &L->id);
		return rc == S3D_OK && L->id.len == 0 ? S3D_E_PROTOCOL : rc;
	case F_SIZE:
		return leaf_int(c, &L->tmp, INT64_MAX, &L->e.size);
	case F_MODIFIED:
	case F_INITIATED:
		return leaf_time(c, &L->tmp, &L->e.last_modified);
	case F_PARTNO:
		rc = leaf_int(c, &L->tmp, 10000, &v);
		if (rc == S3D_OK && v < 1)
			rc = S3D_E_PROTOCOL;
		L->e.part_number = (int)v;
		return rc;
	}
	return S3D_E_INVAL;
}

static void entry_reset(struct lst *L, int kind)
{
	memset(&L->e, 0, sizeof(L->e));
	L->e.kind = kind;
	L->e.size = -1;
	L->etag[0] = 0;
	L->checksum[0] = 0;
	s3d_buf_reset(&L->key);
	s3d_buf_reset(&L->id);
}

/* Points the entry's strings at the fields of its kind, after reading. */
static void entry_point(struct lst *L)
{
	s3d_list_entry *e = &L->e;

	if (e->kind != S3D_ENTRY_PART)
		e->key = s3d_buf_str(&L->key);
	if (e->kind == S3D_ENTRY_UPLOAD)
		e->upload_id = s3d_buf_str(&L->id);
	if (e->kind == S3D_ENTRY_OBJECT || e->kind == S3D_ENTRY_PART)
		e->etag = L->etag;
	if (e->kind == S3D_ENTRY_PART)
		e->checksum_sha256 = L->checksum;
}

static int read_entry(struct lst *L, xmlNodePtr n)
{
	xmlNodePtr c;
	unsigned seen = 0, f;
	int rc = S3D_OK;

	entry_reset(L, L->kind);
	for (c = elem(n->children); c && rc == S3D_OK; c = elem(c->next)) {
		f = field_of(c) & L->shape->fields;
		if (!f)
			continue;
		if (seen & f)
			return S3D_E_PROTOCOL;
		seen |= f;
		rc = read_field(L, c, f);
	}
	if (rc == S3D_OK && (seen & L->shape->required) != L->shape->required)
		rc = S3D_E_PROTOCOL;
	if (rc == S3D_OK)
		entry_point(L);
	return rc;
}

static int deliver(struct lst *L, s3d_list_fn fn, void *ud, s3d_xml_page *page)
{
	if (page->count >= S3D_XML_MAX_ENTRIES)
		return S3D_E_TOOBIG;
	page->count++;
	if (fn && fn(ud, &L->e) != 0)
		page->stopped = 1;
	return S3D_OK;
}

static int walk_prefixes(struct lst *L, xmlNodePtr n, s3d_list_fn fn, void *ud,
			 s3d_xml_page *page)
{
	xmlNodePtr p;
	int rc = S3D_OK;

	for (p = elem(n->children); p && rc == S3D_OK && !page->stopped; p = elem(p->next)) {
		if (!is_named(p, "Prefix"))
			continue;
		entry_reset(L, S3D_ENTRY_PREFIX);
		rc = read_key(L, p, &L->key);
		if (rc == S3D_OK) {
			entry_point(L);
			rc = deliver(L, fn, ud, page);
		}
	}
	return rc;
}

/* Every entry in document order; fn NULL only checks and counts. */
static int walk(struct lst *L, xmlNodePtr root, s3d_list_fn fn, void *ud,
		s3d_xml_page *page)
{
	xmlNodePtr n;
	int rc = S3D_OK;

	page->count = 0;
	page->stopped = 0;
	for (n = elem(root->children); n && rc == S3D_OK && !page->stopped; n = elem(n->next)) {
		if (is_named(n, L->shape->entry)) {
			rc = read_entry(L, n);
			if (rc == S3D_OK)
				rc = deliver(L, fn, ud, page);
		} else if (L->kind != S3D_ENTRY_PART && is_named(n, "CommonPrefixes")) {
			rc = walk_prefixes(L, n, fn, ud, page);
		}
	}
	return rc;
}

static int read_encoding(struct lst *L, xmlNodePtr n)
{
	const char *s;
	int rc = leaf_trim(n, &L->tmp, &s);

	if (rc != S3D_OK)
		return rc;
	if (*s == 0)
		return S3D_OK; /* versitygw sends an empty element: not encoded */
	if (strcmp(s, "url") != 0)
		return S3D_E_PROTOCOL; /* keys would be misread */
	L->encoded = 1;
	L->key.max = 3 * S3D_XML_KEY_MAX; /* "%XX" per byte before decoding */
	return S3D_OK;
}

/* The page's own fields, read before any entry (EncodingType may come last). */
static int read_page(struct lst *L, xmlNodePtr root, s3d_xml_page *page)
{
	xmlNodePtr n;
	int64_t marker = 0;
	int rc;

	if ((rc = child(root, "IsTruncated", &n)) == S3D_OK && n)
		rc = leaf_bool(n, &L->tmp, &page->truncated);
	if (rc == S3D_OK && L->kind != S3D_ENTRY_PART &&
	    (rc = child(root, "EncodingType", &n)) == S3D_OK && n)
		rc = read_encoding(L, n);
	if (rc == S3D_OK && L->kind == S3D_ENTRY_OBJECT &&
	    (rc = child(root, "NextContinuationToken", &n)) == S3D_OK && n)
		rc = leaf(n, &page->next_token);
	if (rc == S3D_OK && L->kind == S3D_ENTRY_UPLOAD &&
	    (rc = child(root, "NextKeyMarker", &n)) == S3D_OK && n) {
		rc = leaf(n, &page->next_token);
		if (rc == S3D_OK && L->encoded)
			rc = url_decode(&page->next_token);
	}
	if (rc == S3D_OK && L->kind == S3D_ENTRY_UPLOAD &&
	    (rc = child(root, "NextUploadIdMarker", &n)) == S3D_OK && n)
		rc = leaf(n, &page->next_upload_id_marker);
	if (rc == S3D_OK && L->kind == S3D_ENTRY_PART &&
	    (rc = child(root, "NextPartNumberMarker", &n)) == S3D_OK && n) {
		rc = leaf_int(n, &L->tmp, 10000, &marker);
		page->next_part_number_marker = (int)marker;
	}
	if (rc != S3D_OK || !page->truncated)
		return rc;
	/* a truncated page must say where the next one starts */
	if (L->kind == S3D_ENTRY_PART ? marker <= 0 : page->next_token.len == 0)
		return S3D_E_PROTOCOL;
	return S3D_OK;
}

void s3d_xml_page_init(s3d_xml_page *page)
{
	memset(page, 0, sizeof(*page));
	s3d_buf_init(&page->next_token, S3D_XML_TOKEN_MAX);
	s3d_buf_init(&page->next_upload_id_marker, S3D_XML_ID_MAX);
}

void s3d_xml_page_cleanup(s3d_xml_page *page)
{
	s3d_buf_cleanup(&page->next_token);
	s3d_buf_cleanup(&page->next_upload_id_marker);
}

static void page_reset(s3d_xml_page *page)
{
	page->truncated = 0;
	page->stopped = 0;
	page->count = 0;
	page->next_part_number_marker = 0;
	s3d_buf_reset(&page->next_token);
	s3d_buf_reset(&page->next_upload_id_marker);
}

int s3d_xml_parse_list(const char *body, size_t len, int kind, s3d_list_fn fn,
		       void *ud, s3d_xml_page *page)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr root;
	struct lst L;
	int rc;

	if (!page || (kind != S3D_ENTRY_OBJECT && kind != S3D_ENTRY_UPLOAD &&
		      kind != S3D_ENTRY_PART))
		return S3D_E_INVAL;
	page_reset(page);
	rc = load(body, len, shapes[kind].root, &doc, &root);
	if (rc != S3D_OK)
		return rc;
	lst_init(&L, kind);
	rc = read_page(&L, root, page);
	if (rc == S3D_OK)
		rc = walk(&L, root, NULL, NULL, page); /* all or nothing for fn */
	if (rc == S3D_OK)
		rc = walk(&L, root, fn, ud, page);
	lst_cleanup(&L);
	xmlFreeDoc(doc);
	return rc;
}

/* ---- single results ---- */

int s3d_xml_parse_initiate(const char *body, size_t len, s3d_buf *upload_id)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr root, n;
	s3d_buf tmp;
	int rc;

	if (!upload_id)
		return S3D_E_INVAL;
	rc = load(body, len, "InitiateMultipartUploadResult", &doc, &root);
	if (rc != S3D_OK)
		return rc;
	s3d_buf_init(&tmp, S3D_XML_ID_MAX);
	rc = child(root, "UploadId", &n);
	if (rc == S3D_OK && !n)
		rc = S3D_E_PROTOCOL;
	if (rc == S3D_OK)
		rc = leaf(n, &tmp);
	if (rc == S3D_OK && tmp.len == 0)
		rc = S3D_E_PROTOCOL;
	if (rc == S3D_OK && tmp.len > upload_id->max)
		rc = S3D_E_TOOBIG;
	if (rc == S3D_OK) {
		s3d_buf_reset(upload_id);
		rc = s3d_buf_append(upload_id, tmp.ptr, tmp.len);
	}
	s3d_buf_cleanup(&tmp);
	xmlFreeDoc(doc);
	return rc;
}

/* A required, non-empty ETag child into etag[136]. */
static int read_etag(xmlNodePtr root, s3d_buf *tmp, char etag[136])
{
	xmlNodePtr n;
	int rc = child(root, "ETag", &n);

	if (rc == S3D_OK && !n)
		rc = S3D_E_PROTOCOL;
	if (rc == S3D_OK)
		rc = leaf_field(n, tmp, etag, 136);
	if (rc == S3D_OK && !etag[0])
		rc = S3D_E_PROTOCOL;
	return rc;
}

int s3d_xml_parse_copy_result(const char *body, size_t len, char etag[136],
			      int64_t *last_modified)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr root, n;
	s3d_buf tmp;
	char tag[136];
	int64_t lm = 0;
	int rc;

	if (!etag || !last_modified)
		return S3D_E_INVAL;
	rc = load(body, len, NULL, &doc, &root);
	if (rc != S3D_OK)
		return rc;
	s3d_buf_init(&tmp, 256);
	if (!is_named(root, "CopyObjectResult") && !is_named(root, "CopyPartResult"))
		rc = S3D_E_PROTOCOL;
	if (rc == S3D_OK)
		rc = read_etag(root, &tmp, tag);
	if (rc == S3D_OK && (rc = child(root, "LastModified", &n)) == S3D_OK && n)
		rc = leaf_time(n, &tmp, &lm);
	if (rc == S3D_OK) {
		memcpy(etag, tag, sizeof(tag));
		*last_modified = lm;
	}
	s3d_buf_cleanup(&tmp);
	xmlFreeDoc(doc);
	return rc;
}

/* An optional child into a fixed field (left as is when absent). */
static int opt_field(xmlNodePtr root, const char *name, s3d_buf *tmp, char *dst,
		     size_t cap)
{
	xmlNodePtr n;
	int rc = child(root, name, &n);

	if (rc == S3D_OK && n)
		rc = leaf_field(n, tmp, dst, cap);
	return rc;
}

int s3d_xml_parse_complete(const char *body, size_t len, s3d_obj_info *out,
			   s3d_error *err)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr root;
	s3d_obj_info info;
	s3d_buf tmp;
	int rc;

	if (!out)
		return S3D_E_INVAL;
	rc = load(body, len, NULL, &doc, &root);
	if (rc != S3D_OK)
		return rc;
	if (is_named(root, "Error")) {
		s3d_error e;

		if (err)
			e = *err;
		rc = fill_error(root, err ? &e : NULL, 0);
		if (rc == S3D_OK && err)
			*err = e;
		xmlFreeDoc(doc);
		return rc == S3D_OK ? S3D_E_S3 : rc;
	}
	info = *out;
	s3d_buf_init(&tmp, 256);
	rc = is_named(root, "CompleteMultipartUploadResult") ? S3D_OK : S3D_E_PROTOCOL;
	if (rc == S3D_OK)
		rc = read_etag(root, &tmp, info.etag);
	if (rc == S3D_OK)
		rc = opt_field(root, "ChecksumSHA256", &tmp, info.checksum_sha256,
			       sizeof(info.checksum_sha256));
	if (rc == S3D_OK)
		rc = opt_field(root, "ChecksumType", &tmp, info.checksum_type,
			       sizeof(info.checksum_type));
	if (rc == S3D_OK)
		*out = info;
	s3d_buf_cleanup(&tmp);
	xmlFreeDoc(doc);
	return rc;
}

int s3d_xml_parse_delete_result(const char *body, size_t len, int *nerrors,
				s3d_error *first)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr root, n;
	s3d_error e;
	int rc, count = 0;

	if (!nerrors)
		return S3D_E_INVAL;
	rc = load(body, len, NULL, &doc, &root);
	if (rc != S3D_OK)
		return rc;
	if (first)
		e = *first;
	if (is_named(root, "Error")) {
		rc = fill_error(root, first ? &e : NULL, 1);
		if (rc == S3D_OK)
			rc = S3D_E_S3;
	} else if (!is_named(root, "DeleteResult")) {
		rc = S3D_E_PROTOCOL;
	}
	/* bounded: the load refused documents over S3D_XML_MAX_NODES */
	for (n = elem(root->children); rc == S3D_OK && n; n = elem(n->next)) {
		s3d_error one;

		if (!is_named(n, "Error"))
			continue;
		if (count >= S3D_XML_MAX_ENTRIES) {
			rc = S3D_E_TOOBIG;
			break;
		}
		memset(&one, 0, sizeof(one));
		rc = fill_error(n, &one, 1);
		/* a key that is already gone counts as deleted, as AWS reports it
		 * (some servers answer NoSuchKey when a concurrent delete won) */
		if (rc != S3D_OK || strcmp(one.code, "NoSuchKey") == 0)
			continue;
		if (count++ == 0 && first)
			fill_error(n, &e, 1);
	}
	if ((rc == S3D_OK || rc == S3D_E_S3) && first)
		*first = e;
	if (rc == S3D_OK)
		*nerrors = count;
	xmlFreeDoc(doc);
	return rc;
}

/* ---- request bodies ---- */

/*
 * One well-formed UTF-8 sequence (Unicode table 3-7: no overlong forms, no
 * surrogates, nothing above U+10FFFF): its code point and length, or -1.
 * libxml2's xmlGetUTF8Char/xmlCheckUTF8 let overlong forms and stray
 * continuation bytes through, and the writer does not check at all.
 */
static long utf8_next(const unsigned char *p, size_t n, size_t *len)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xBF;
	size_t k, need;
	long cp;

	if (c < 0x80) {
		*len = 1;
		return c;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		cp = c & 0x0F;
		lo = c == 0xE0 ? 0xA0 : 0x80;
		hi = c == 0xED ? 0x9F : 0xBF;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		cp = c & 0x07;
		lo = c == 0xF0 ? 0x90 : 0x80;
		hi = c == 0xF4 ? 0x8F : 0xBF;
	} else {
		return -1;
	}
	if (n <= need)
		return -1;
	for (k = 1; k <= need; k++) {
		if (p[k] < lo || p[k] > hi)
			return -1;
		lo = 0x80;
		hi = 0xBF;
		cp = cp << 6 | (p[k] & 0x3F);
	}
	*len = need + 1;
	return cp;
}

/* Non-empty UTF-8 of XML 1.0 characters, at most max bytes. */
static int check_text(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, len = 0;
	long c;

	if (!s)
		return S3D_E_INVAL;
	n = strnlen(s, max + 1);
	if (n == 0)
		return S3D_E_INVAL;
	if (n > max)
		return S3D_E_TOOBIG;
	while (n > 0) {
		c = utf8_next(p, n, &len);
		if (c < 0 || !xmlIsCharQ(c))
			return S3D_E_INVAL;
		p += len;
		n -= len;
	}
	return S3D_OK;
}

struct xw {
	xmlBufferPtr buf;
	xmlTextWriterPtr w;
};

static int xw_open(struct xw *x, const char *root)
{
	x->w = NULL;
	x->buf = xmlBufferCreate();
	if (!x->buf)
		return S3D_E_NOMEM;
	x->w = xmlNewTextWriterMemory(x->buf, 0);
	if (!x->w)
		return S3D_E_NOMEM;
	if (xmlTextWriterStartDocument(x->w, "1.0", "UTF-8", NULL) < 0 ||
	    xmlTextWriterStartElement(x->w, BAD_CAST root) < 0 ||
	    xmlTextWriterWriteAttribute(x->w, BAD_CAST "xmlns", BAD_CAST S3D_XML_NS) < 0)
		return S3D_E_NOMEM;
	return S3D_OK;
}

/* <name>text</name>, text escaped by libxml2. */
static int xw_elem(struct xw *x, const char *name, const char *text)
{
	return xmlTextWriterWriteElement(x->w, BAD_CAST name, BAD_CAST text) < 0 ?
		       S3D_E_NOMEM : S3D_OK;
}

static int xw_start(struct xw *x, const char *name)
{
	return xmlTextWriterStartElement(x->w, BAD_CAST name) < 0 ? S3D_E_NOMEM : S3D_OK;
}

static int xw_end(struct xw *x)
{
	return xmlTextWriterEndElement(x->w) < 0 ? S3D_E_NOMEM : S3D_OK;
}

/* Closes the document and copies it into out (unchanged when it does not fit). */
static int xw_finish(struct xw *x, s3d_buf *out)
{
	const xmlChar *p;
	int n;

	if (xmlTextWriterEndDocument(x->w) < 0)
		return S3D_E_NOMEM;
	xmlFreeTextWriter(x->w); /* flushes into x->buf */
	x->w = NULL;
	p = xmlBufferContent(x->buf);
	n = xmlBufferLength(x->buf);
	if (!p || n <= 0)
		return S3D_E_NOMEM;
	if ((size_t)n > out->max)
		return S3D_E_TOOBIG;
	s3d_buf_reset(out);
	return s3d_buf_append(out, p, (size_t)n);
}

static void xw_free(struct xw *x)
{
	if (x->w)
		xmlFreeTextWriter(x->w);
	if (x->buf)
		xmlBufferFree(x->buf);
}

static int check_parts(const s3d_part *parts, size_t n)
{
	size_t i;
	int rc = S3D_OK;

	if (!parts || n == 0 || n > S3D_XML_MAX_PARTS)
		return S3D_E_INVAL;
	for (i = 0; i < n && rc == S3D_OK; i++) {
		if (parts[i].number < 1 || parts[i].number > 10000 ||
		    (i > 0 && parts[i].number <= parts[i - 1].number))
			return S3D_E_INVAL;
		rc = check_text(parts[i].etag, sizeof(parts[i].etag) - 1);
		if (rc == S3D_OK && parts[i].checksum_sha256[0])
			rc = check_text(parts[i].checksum_sha256,
					sizeof(parts[i].checksum_sha256) - 1);
	}
	return rc;
}

static int write_part(struct xw *x, const s3d_part *p)
{
	int rc = xw_start(x, "Part");

	if (rc == S3D_OK &&
	    xmlTextWriterWriteFormatElement(x->w, BAD_CAST "PartNumber", "%d", p->number) < 0)
		rc = S3D_E_NOMEM;
	if (rc == S3D_OK)
		rc = xw_elem(x, "ETag", p->etag);
	if (rc == S3D_OK && p->checksum_sha256[0])
		rc = xw_elem(x, "ChecksumSHA256", p->checksum_sha256);
	if (rc == S3D_OK)
		rc = xw_end(x);
	return rc;
}

int s3d_xml_build_complete(const s3d_part *parts, size_t n, s3d_buf *out)
{
	struct quiet q;
	struct xw x;
	size_t i;
	int rc;

	if (!out)
		return S3D_E_INVAL;
	rc = check_parts(parts, n);
	if (rc != S3D_OK)
		return rc;
	quiet_begin(&q);
	rc = xw_open(&x, "CompleteMultipartUpload");
	for (i = 0; i < n && rc == S3D_OK; i++)
		rc = write_part(&x, &parts[i]);
	if (rc == S3D_OK)
		rc = xw_finish(&x, out);
	xw_free(&x);
	quiet_end(&q);
	return rc;
}

int s3d_xml_build_delete(const char *const *keys, size_t n, s3d_buf *out)
{
	struct quiet q;
	struct xw x;
	size_t i;
	int rc = S3D_OK;

	if (!out || !keys || n == 0 || n > S3D_XML_MAX_DELETE)
		return S3D_E_INVAL;
	for (i = 0; i < n && rc == S3D_OK; i++)
		rc = check_text(keys[i], S3D_XML_KEY_MAX);
	if (rc != S3D_OK)
		return rc;
	quiet_begin(&q);
	rc = xw_open(&x, "Delete");
	if (rc == S3D_OK)
		rc = xw_elem(&x, "Quiet", "true");
	for (i = 0; i < n && rc == S3D_OK; i++) {
		rc = xw_start(&x, "Object");
		if (rc == S3D_OK)
			rc = xw_elem(&x, "Key", keys[i]);
		if (rc == S3D_OK)
			rc = xw_end(&x);
	}
	if (rc == S3D_OK)
		rc = xw_finish(&x, out);
	xw_free(&x);
	quiet_end(&q);
	return rc;
}

/* ---- time ---- */

/* Digits where shape has 'd', the other characters literally. */
static int has_shape(const char *s, const char *shape)
{
	for (; *shape; s++, shape++)
		if (*shape == 'd' ? !isdigit((unsigned char)*s) : *s != *shape)
			return 0;
	return 1;
}

/* After the seconds: [.fraction] then Z, +hh:mm, -hh:mm or nothing; offset in seconds. */
static int parse_zone(const char *p, long *offset)
{
	int i;

	*offset = 0;
	if (*p == '.') {
		for (i = 0, p++; isdigit((unsigned char)*p) && i < 10; p++, i++)
			;
		if (i == 0 || i > 9)
			return S3D_E_INVAL;
	}
	if (p[0] == 0 || (p[0] == 'Z' && p[1] == 0))
		return S3D_OK; /* no zone: UTC, as S3 means it */
	if ((p[0] != '+' && p[0] != '-') || !has_shape(p + 1, "dd:dd") || p[6] != 0)
		return S3D_E_INVAL;
	*offset = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L +
		  ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
	if (*offset > 24 * 3600L || p[4] > '5')
		return S3D_E_INVAL;
	if (p[0] == '-')
		*offset = -*offset;
	return S3D_OK;
}

int s3d_xml_parse_time(const char *s, int64_t *out)
{
	struct tm tm, want;
	const char *p;
	long offset;
	time_t t;

	if (!s || !out)
		return S3D_E_INVAL;
	/* strptime alone would accept blanks and short fields */
	if (!has_shape(s, "dddd-dd-ddTdd:dd:dd"))
		return S3D_E_INVAL;
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p != s + 19 || parse_zone(p, &offset) != S3D_OK)
		return S3D_E_INVAL;
	want = tm;
	t = timegm(&tm);
	/* timegm normalizes Feb 30 to Mar 2: refuse what did not survive */
	if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon ||
	    tm.tm_mday != want.tm_mday || tm.tm_hour != want.tm_hour ||
	    tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
		return S3D_E_INVAL;
	*out = (int64_t)t - offset;
	return S3D_OK;
}
