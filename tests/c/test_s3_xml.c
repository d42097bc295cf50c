/* s3_xml: hostile bodies first, then the shapes AWS, MinIO and versitygw send,
 * then request bodies round-tripped through libxml2. */
#include "t.h"

#include "buf.h"
#include "s3_xml.h"
#include "s3direct.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define NS_ATTR " xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""
#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define BIG (64u << 20)
#define LIT(s) (s), (sizeof(s) - 1) /* a literal and its length */

/* ---- recording callback ---- */

#define REC_MAX 16

struct rec {
	int n;        /* calls */
	int stop_at;  /* stop on this call (1-based); 0 = never */
	int kinds[REC_MAX];
	char keys[REC_MAX][1100];
	char ids[REC_MAX][128];
	char etags[REC_MAX][140];
	char sums[REC_MAX][70];
	int64_t sizes[REC_MAX];
	int64_t times[REC_MAX];
	int parts[REC_MAX];
};

static void rec_str(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "(null)");
}

static int rec_fn(void *ud, const s3d_list_entry *e)
{
	struct rec *r = ud;
	int i = r->n++;

	if (i < REC_MAX) {
		r->kinds[i] = e->kind;
		rec_str(r->keys[i], sizeof(r->keys[i]), e->key);
		rec_str(r->ids[i], sizeof(r->ids[i]), e->upload_id);
		rec_str(r->etags[i], sizeof(r->etags[i]), e->etag);
		rec_str(r->sums[i], sizeof(r->sums[i]), e->checksum_sha256);
		r->sizes[i] = e->size;
		r->times[i] = e->last_modified;
		r->parts[i] = e->part_number;
	}
	return r->stop_at && r->n == r->stop_at;
}

static int list(const char *body, int kind, struct rec *r, s3d_xml_page *page)
{
	return s3d_xml_parse_list(body, strlen(body), kind, rec_fn, r, page);
}

/* Every parser on one body: none may accept it. */
static void expect_all_refuse(const char *body, size_t len, int want)
{
	s3d_error err;
	s3d_xml_page page;
	s3d_buf id;
	s3d_obj_info info;
	struct rec r = { 0 };
	char etag[136] = "unchanged";
	int64_t lm = 7;
	int nerr = -1, kind;

	s3d_error_clear(&err);
	T_EQ_INT(want, s3d_xml_parse_error(body, len, &err));
	T_EQ_STR("", err.code);
	s3d_xml_page_init(&page);
	for (kind = S3D_ENTRY_OBJECT; kind <= S3D_ENTRY_PART; kind++) {
		if (kind == S3D_ENTRY_PREFIX)
			continue;
		T_EQ_INT(want, s3d_xml_parse_list(body, len, kind, rec_fn, &r, &page));
	}
	T_EQ_INT(0, r.n);
	s3d_xml_page_cleanup(&page);
	s3d_buf_init(&id, 4096);
	T_EQ_INT(want, s3d_xml_parse_initiate(body, len, &id));
	T_EQ_INT(0, id.len);
	s3d_buf_cleanup(&id);
	T_EQ_INT(want, s3d_xml_parse_copy_result(body, len, etag, &lm));
	T_EQ_STR("unchanged", etag);
	T_EQ_INT(7, lm);
	memset(&info, 0, sizeof(info));
	T_EQ_INT(want, s3d_xml_parse_complete(body, len, &info, &err));
	T_EQ_STR("", info.etag);
	T_EQ_INT(want, s3d_xml_parse_delete_result(body, len, &nerr, &err));
	T_EQ_INT(-1, nerr);
	T_EQ_STR("", err.code);
}

static void expect_all_refuse_z(const char *body, int want)
{
	expect_all_refuse(body, strlen(body), want);
}

/* ---- hostile input ---- */

static void test_hostile_empty_and_junk(void)
{
	static const char nul_junk[] = "<Error>\0<Code>x</Code></Error>";
	s3d_xml_page page;

	expect_all_refuse(NULL, 0, S3D_E_PROTOCOL);
	expect_all_refuse(NULL, 5, S3D_E_INVAL);
	expect_all_refuse_z("", S3D_E_PROTOCOL);
	expect_all_refuse_z(" \r\n\t ", S3D_E_PROTOCOL);
	expect_all_refuse_z("not xml at all", S3D_E_PROTOCOL);
	expect_all_refuse_z("{\"Code\":\"NoSuchKey\"}", S3D_E_PROTOCOL);
	expect_all_refuse_z("<", S3D_E_PROTOCOL);
	expect_all_refuse_z("<Error><Code>NoSuchKey</Code>", S3D_E_PROTOCOL);
	expect_all_refuse_z("<ListBucketResult><Contents><Key>a</Key>", S3D_E_PROTOCOL);
	expect_all_refuse_z("<Error><Code>x</Error>", S3D_E_PROTOCOL);
	expect_all_refuse_z("<Error/><Error/>", S3D_E_PROTOCOL);
	expect_all_refuse_z("<Error/>trailing", S3D_E_PROTOCOL);
	expect_all_refuse_z("<Error><Code>&undeclared;</Code></Error>", S3D_E_PROTOCOL);
	expect_all_refuse_z("<Error><Code>\xff\xfe</Code></Error>", S3D_E_PROTOCOL);
	expect_all_refuse_z("<Error><Code>&#0;</Code></Error>", S3D_E_PROTOCOL);
	expect_all_refuse_z("\n" XML_DECL "<Error/>junk<", S3D_E_PROTOCOL);
	expect_all_refuse(nul_junk, sizeof(nul_junk) - 1, S3D_E_PROTOCOL);
	/* well-formed, wrong root for everybody */
	expect_all_refuse_z(XML_DECL "<Wrong" NS_ATTR "><Code>x</Code></Wrong>", S3D_E_PROTOCOL);
	expect_all_refuse_z("<html><body>502 Bad Gateway</body></html>", S3D_E_PROTOCOL);

	/* kind and page checks */
	s3d_xml_page_init(&page);
	T_EQ_INT(S3D_E_INVAL, s3d_xml_parse_list("<ListBucketResult/>", 19, S3D_ENTRY_PREFIX,
						 NULL, NULL, &page));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_parse_list("<ListBucketResult/>", 19, 99, NULL, NULL, &page));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_parse_list("<ListBucketResult/>", 19, S3D_ENTRY_OBJECT,
						 NULL, NULL, NULL));
	T_EQ_INT(S3D_OK, s3d_xml_parse_list("<ListBucketResult/>", 19, S3D_ENTRY_OBJECT,
					    NULL, NULL, &page));
	s3d_xml_page_cleanup(&page);
	T_EQ_INT(S3D_E_INVAL, s3d_xml_parse_initiate("<x/>", 4, NULL));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_parse_copy_result("<x/>", 4, NULL, NULL));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_parse_complete("<x/>", 4, NULL, NULL));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_parse_delete_result("<x/>", 4, NULL, NULL));
}

static const char billion_laughs[] =
	"<?xml version=\"1.0\"?>\n"
	"<!DOCTYPE Error [\n"
	" <!ENTITY lol \"lol\">\n"
	" <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
	" <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
	" <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
	" <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
	" <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
	" <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
	" <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
	" <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
	" <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
	"]>\n"
	"<Error><Code>&lol9;</Code><Message>&lol9;</Message></Error>";

static void test_hostile_doctype_and_entities(void)
{
	/* each would expand, load a file, or fetch a URL if entities or DTDs were honoured */
	static const char *const bodies[] = {
		billion_laughs,
		"<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		"<Error><Code>&x;</Code></Error>",
		"<!DOCTYPE Error [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/evil.dtd\"> %p;]>"
		"<Error><Code>x</Code></Error>",
		"<!DOCTYPE Error SYSTEM \"http://127.0.0.1:9/evil.dtd\"><Error><Code>x</Code></Error>",
		"<!DOCTYPE Error PUBLIC \"-//x//y\" \"file:///etc/passwd\"><Error/>",
		"<!DOCTYPE Error><Error><Code>plain doctype</Code></Error>",
		"<!DOCTYPE ListBucketResult [<!ENTITY k \"key\">]>"
		"<ListBucketResult><Contents><Key>&k;</Key></Contents></ListBucketResult>",
	};
	s3d_error err;
	size_t i;
	clock_t t0 = clock();

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		expect_all_refuse_z(bodies[i], S3D_E_PROTOCOL);
		s3d_error_clear(&err);
		T_EQ_INT(S3D_E_PROTOCOL, s3d_xml_parse_error(bodies[i], strlen(bodies[i]), &err));
		T_EQ_STR("", err.code);
		T_EQ_STR("", err.message);
	}
	/* refused before any expansion: far below a second for all of it */
	T_TRUE((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
}

static void test_hostile_oversized_body(void)
{
	size_t n = S3D_XML_MAX_BODY + 1, pad = 4096;
	const char *doc = "<Error><Code>Big</Code></Error>";
	char *big = malloc(n + pad + 64);
	s3d_error err;

	T_REQUIRE(big != NULL);
	/* S3D_XML_MAX_BODY + 1 bytes of would-be XML: refused unread */
	memset(big, 'a', n);
	memcpy(big, "<Error><Code>", 13);
	expect_all_refuse(big, n, S3D_E_TOOBIG);
	/* leading blanks (AWS keep-alive padding) do not count */
	memset(big, ' ', pad);
	memcpy(big + pad, doc, strlen(doc));
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_xml_parse_error(big, pad + strlen(doc), &err));
	T_EQ_STR("Big", err.code);
	free(big);
}

static int caller_errors;

#if LIBXML_VERSION >= 21200
static void caller_handler(void *ud, const xmlError *e)
#else
static void caller_handler(void *ud, xmlErrorPtr e)
#endif
{
	(void)ud;
	(void)e;
	caller_errors++;
}

/* libxml2 never prints from inside the library, and the caller's handler comes back. */
static void test_hostile_never_prints(void)
{
	static const char utf16_bad[] = "\xff\xfe<\0E\0r\0\0\xd8<\0/\0";
	static const char latin1[] =
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Error><Code>caf\xe9</Code></Error>";
	static const char bogus_enc[] =
		"<?xml version=\"1.0\" encoding=\"x-no-such\"?><Error><Code>c</Code></Error>";
	FILE *cap = tmpfile();
	s3d_error err;
	int saved;

	T_REQUIRE(cap != NULL);
	fflush(stderr);
	saved = dup(2);
	T_REQUIRE(saved >= 0 && dup2(fileno(cap), 2) >= 0);
	xmlSetStructuredErrorFunc(NULL, caller_handler);
	expect_all_refuse(utf16_bad, sizeof(utf16_bad) - 1, S3D_E_PROTOCOL);
	expect_all_refuse_z(latin1, S3D_E_PROTOCOL); /* S3 speaks UTF-8 only */
	expect_all_refuse_z(billion_laughs, S3D_E_PROTOCOL);
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_xml_parse_error(LIT(bogus_enc), &err)); /* declaration ignored */
	T_EQ_STR("c", err.code);
	T_EQ_INT(0, caller_errors);
	xmlFreeDoc(xmlReadMemory("<a>", 3, NULL, NULL, 0)); /* the caller's handler is back */
	T_TRUE(caller_errors > 0);
	xmlSetStructuredErrorFunc(NULL, NULL);
	fflush(stderr);
	T_REQUIRE(dup2(saved, 2) >= 0);
	close(saved);
	T_EQ_INT(0, ftell(cap));
	fclose(cap);
}

static void repeat(s3d_buf *b, char c, size_t n)
{
	while (n--)
		T_EQ_INT(S3D_OK, s3d_buf_appendc(b, c));
}

static void build_many(s3d_buf *b, int nentries, const char *entry, const char *root)
{
	int i;

	s3d_buf_reset(b);
	T_EQ_INT(S3D_OK, s3d_buf_printf(b, "<%s>", root));
	for (i = 0; i < nentries; i++)
		T_EQ_INT(S3D_OK, s3d_buf_printf(b, entry, i));
	T_EQ_INT(S3D_OK, s3d_buf_printf(b, "</%s>", root));
}

static void test_hostile_entry_counts(void)
{
	s3d_buf b;
	s3d_xml_page page;
	struct rec r = { 0 };
	int nerr = 0;
	clock_t t0 = clock();

	s3d_buf_init(&b, BIG);
	s3d_xml_page_init(&page);
	build_many(&b, S3D_XML_MAX_ENTRIES + 1, "<Contents><Key>k%d</Key></Contents>",
		   "ListBucketResult");
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_list((char *)b.ptr, b.len, S3D_ENTRY_OBJECT,
						  rec_fn, &r, &page));
	T_EQ_INT(0, r.n); /* nothing delivered from a refused page */
	build_many(&b, S3D_XML_MAX_ENTRIES + 1, "<CommonPrefixes><Prefix>p%d/</Prefix></CommonPrefixes>",
		   "ListBucketResult");
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_list((char *)b.ptr, b.len, S3D_ENTRY_OBJECT,
						  rec_fn, &r, &page));
	build_many(&b, S3D_XML_MAX_ENTRIES, "<Contents><Key>k%d</Key></Contents>",
		   "ListBucketResult");
	T_EQ_INT(S3D_OK, s3d_xml_parse_list((char *)b.ptr, b.len, S3D_ENTRY_OBJECT,
					    rec_fn, &r, &page));
	T_EQ_INT(S3D_XML_MAX_ENTRIES, page.count);
	T_EQ_INT(S3D_XML_MAX_ENTRIES, r.n);
	T_EQ_STR("k0", r.keys[0]);
	build_many(&b, S3D_XML_MAX_ENTRIES + 1,
		   "<Error><Key>k%d</Key><Code>AccessDenied</Code></Error>", "DeleteResult");
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_delete_result((char *)b.ptr, b.len, &nerr, NULL));
	/* many small elements that are no entry: the element bound */
	build_many(&b, (int)S3D_XML_MAX_NODES, "<x/>", "ListBucketResult");
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_list((char *)b.ptr, b.len, S3D_ENTRY_OBJECT,
						  NULL, NULL, &page));
	build_many(&b, (int)S3D_XML_MAX_NODES - 1, "<x/>", "ListBucketResult");
	T_EQ_INT(S3D_OK, s3d_xml_parse_list((char *)b.ptr, b.len, S3D_ENTRY_OBJECT,
					    NULL, NULL, &page));
	T_EQ_INT(0, page.count);
	/* attributes and namespace declarations count too */
	build_many(&b, (int)S3D_XML_MAX_NODES / 9 + 1,
		   "<x a='%d' b='' c='' d='' e='' f='' g='' h=''/>", "ListBucketResult");
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_list((char *)b.ptr, b.len, S3D_ENTRY_OBJECT,
						  NULL, NULL, &page));
	/* one huge tag is refused unread (libxml2 2.9 is quadratic in its attributes) */
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListBucketResult><x"));
	for (nerr = 0; nerr < (int)S3D_XML_MAX_NODES; nerr++)
		T_EQ_INT(S3D_OK, s3d_buf_printf(&b, " a%d=''", nerr));
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "/></ListBucketResult>"));
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_list((char *)b.ptr, b.len, S3D_ENTRY_OBJECT,
						  NULL, NULL, &page));
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListBucketResult><x"));
	for (nerr = 0; nerr < (int)S3D_XML_MAX_NODES; nerr++)
		T_EQ_INT(S3D_OK, s3d_buf_printf(&b, " xmlns:n%d='u:%d'", nerr, nerr));
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "/></ListBucketResult>"));
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_list((char *)b.ptr, b.len, S3D_ENTRY_OBJECT,
						  NULL, NULL, &page));
	/* comments and PIs build nothing: a body full of them parses in bounded memory */
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListBucketResult>"));
	for (nerr = 0; nerr < 1000000; nerr++)
		T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<!---->"));
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<?pi?><Contents><Key>k<!--c--></Key></Contents>"
					     "</ListBucketResult>"));
	T_EQ_INT(S3D_OK, s3d_xml_parse_list((char *)b.ptr, b.len, S3D_ENTRY_OBJECT,
					    NULL, NULL, &page));
	T_EQ_INT(1, page.count);
	/* deep nesting: libxml2's depth limit stays on */
	s3d_buf_reset(&b);
	for (nerr = 0; nerr < 5000; nerr++)
		T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<a>"));
	expect_all_refuse((char *)b.ptr, b.len, S3D_E_PROTOCOL);
	/* a long comment is no way around it */
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListBucketResult><!--"));
	repeat(&b, '-', S3D_XML_MAX_MARKUP + S3D_XML_MAX_MARKUP / 2);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "-></ListBucketResult>"));
	expect_all_refuse((char *)b.ptr, b.len, S3D_E_TOOBIG);
	/* all of the above in bounded time, even under the sanitizers */
	T_TRUE((double)(clock() - t0) / CLOCKS_PER_SEC < 20.0);
	s3d_xml_page_cleanup(&page);
	s3d_buf_cleanup(&b);
}

static void test_hostile_field_sizes(void)
{
	s3d_buf b, id;
	s3d_xml_page page;
	struct rec r = { 0 };
	char etag[136];
	int64_t lm;
	s3d_obj_info info;

	s3d_buf_init(&b, BIG);
	s3d_xml_page_init(&page);
	/* ETag of 135 bytes fits s3d_part.etag, 136 does not: never truncated */
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<CopyObjectResult><ETag>"));
	repeat(&b, 'e', 135);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</ETag></CopyObjectResult>"));
	T_EQ_INT(S3D_OK, s3d_xml_parse_copy_result((char *)b.ptr, b.len, etag, &lm));
	T_EQ_INT(135, strlen(etag));
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<CopyPartResult><ETag>"));
	repeat(&b, 'e', 136);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</ETag></CopyPartResult>"));
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_copy_result((char *)b.ptr, b.len, etag, &lm));
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<CompleteMultipartUploadResult><ETag>"));
	repeat(&b, 'e', 100000);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</ETag></CompleteMultipartUploadResult>"));
	memset(&info, 0, sizeof(info));
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_complete((char *)b.ptr, b.len, &info, NULL));
	T_EQ_STR("", info.etag);
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListBucketResult><Contents><Key>k</Key><ETag>"));
	repeat(&b, 'e', 136);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</ETag></Contents></ListBucketResult>"));
	T_EQ_INT(S3D_E_TOOBIG, list((char *)b.ptr, S3D_ENTRY_OBJECT, &r, &page));

	/* keys: S3's 1024 bytes fit, 1025 do not */
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListBucketResult><Contents><Key>"));
	repeat(&b, 'k', 1024);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</Key></Contents></ListBucketResult>"));
	T_EQ_INT(S3D_OK, list((char *)b.ptr, S3D_ENTRY_OBJECT, &r, &page));
	T_EQ_INT(1024, strlen(r.keys[0]));
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListBucketResult><CommonPrefixes><Prefix>"));
	repeat(&b, 'k', 1025);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</Prefix></CommonPrefixes></ListBucketResult>"));
	T_EQ_INT(S3D_E_TOOBIG, list((char *)b.ptr, S3D_ENTRY_OBJECT, &r, &page));

	/* checksum: 64 bytes do not fit s3d_part.checksum_sha256 */
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListPartsResult><Part><PartNumber>1</PartNumber>"
					     "<ChecksumSHA256>"));
	repeat(&b, 'c', 64);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</ChecksumSHA256></Part></ListPartsResult>"));
	T_EQ_INT(S3D_E_TOOBIG, list((char *)b.ptr, S3D_ENTRY_PART, &r, &page));

	/* upload ids: the library's bound and the caller's buffer both hold */
	s3d_buf_init(&id, 10);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&id, "old"));
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_initiate(
		LIT("<InitiateMultipartUploadResult><UploadId>0123456789a</UploadId>"
		"</InitiateMultipartUploadResult>"), &id));
	T_EQ_STR("old", s3d_buf_str(&id));
	s3d_buf_cleanup(&id);
	s3d_buf_init(&id, 1u << 20);
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<InitiateMultipartUploadResult><UploadId>"));
	repeat(&b, 'u', S3D_XML_ID_MAX + 1);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</UploadId></InitiateMultipartUploadResult>"));
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_initiate((char *)b.ptr, b.len, &id));
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListMultipartUploadsResult><Upload><Key>k</Key>"
					     "<UploadId>"));
	repeat(&b, 'u', S3D_XML_ID_MAX + 1);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</UploadId></Upload></ListMultipartUploadsResult>"));
	T_EQ_INT(S3D_E_TOOBIG, list((char *)b.ptr, S3D_ENTRY_UPLOAD, &r, &page));
	/* continuation token over its bound */
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListBucketResult><IsTruncated>true</IsTruncated>"
					     "<NextContinuationToken>"));
	repeat(&b, 't', S3D_XML_TOKEN_MAX + 1);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</NextContinuationToken></ListBucketResult>"));
	T_EQ_INT(S3D_E_TOOBIG, list((char *)b.ptr, S3D_ENTRY_OBJECT, &r, &page));
	s3d_buf_cleanup(&id);
	s3d_xml_page_cleanup(&page);
	s3d_buf_cleanup(&b);
}

/* One entry body in a ListBucketResult / ListPartsResult; the return code of the parse. */
static int object_rc(const char *contents)
{
	char body[2048];
	s3d_xml_page page;
	struct rec r = { 0 };
	int rc;

	snprintf(body, sizeof(body), "<ListBucketResult><Contents>%s</Contents></ListBucketResult>",
		 contents);
	s3d_xml_page_init(&page);
	rc = list(body, S3D_ENTRY_OBJECT, &r, &page);
	s3d_xml_page_cleanup(&page);
	if (rc != S3D_OK && r.n != 0)
		return -1; /* a refused page must not reach the callback */
	return rc;
}

static int part_rc(const char *part, const char *page_fields)
{
	char body[2048];
	s3d_xml_page page;
	int rc;

	snprintf(body, sizeof(body), "<ListPartsResult>%s<Part>%s</Part></ListPartsResult>",
		 page_fields, part);
	s3d_xml_page_init(&page);
	rc = s3d_xml_parse_list(body, strlen(body), S3D_ENTRY_PART, NULL, NULL, &page);
	s3d_xml_page_cleanup(&page);
	return rc;
}

static void test_hostile_values(void)
{
	/* sizes */
	T_EQ_INT(S3D_OK, object_rc("<Key>k</Key><Size>0</Size>"));
	T_EQ_INT(S3D_OK, object_rc("<Key>k</Key><Size> 12\n</Size>"));
	T_EQ_INT(S3D_OK, object_rc("<Key>k</Key><Size>9223372036854775807</Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><Size>9223372036854775808</Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><Size>99999999999999999999999</Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><Size>-1</Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><Size>+1</Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><Size>abc</Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><Size>12abc</Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><Size>1.5</Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><Size>0x10</Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><Size></Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><Size>1 2</Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><Size><b>1</b></Size>"));
	/* times */
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><LastModified>yesterday</LastModified>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key><LastModified></LastModified>"));
	/* keys: required, non-empty, text only, once */
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Size>1</Size>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key></Key>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key/>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>a<b/>c</Key>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>a</Key><Key>b</Key>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>a</Key><ETag>x</ETag><ETag>y</ETag>"));
	T_EQ_INT(S3D_OK, object_rc("<Key>a<!-- comment --></Key><Owner><ID>x</ID></Owner>"));
	/* part numbers: 1..10000 */
	T_EQ_INT(S3D_OK, part_rc("<PartNumber>1</PartNumber>", ""));
	T_EQ_INT(S3D_OK, part_rc("<PartNumber>10000</PartNumber>", ""));
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<PartNumber>0</PartNumber>", ""));
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<PartNumber>10001</PartNumber>", ""));
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<PartNumber>-3</PartNumber>", ""));
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<PartNumber>two</PartNumber>", ""));
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<PartNumber>4294967297</PartNumber>", ""));
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<ETag>\"x\"</ETag>", ""));
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<PartNumber>1</PartNumber><Size>-5</Size>", ""));
	/* page fields */
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<PartNumber>1</PartNumber>", "<IsTruncated>yes</IsTruncated>"));
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<PartNumber>1</PartNumber>",
					 "<IsTruncated>true</IsTruncated><IsTruncated>false</IsTruncated>"));
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<PartNumber>1</PartNumber>", "<IsTruncated>true</IsTruncated>"));
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<PartNumber>1</PartNumber>",
					 "<IsTruncated>true</IsTruncated>"
					 "<NextPartNumberMarker>0</NextPartNumberMarker>"));
	T_EQ_INT(S3D_E_PROTOCOL, part_rc("<PartNumber>1</PartNumber>",
					 "<NextPartNumberMarker>x</NextPartNumberMarker>"));
	T_EQ_INT(S3D_OK, part_rc("<PartNumber>1</PartNumber>",
				 "<IsTruncated>1</IsTruncated><NextPartNumberMarker>1</NextPartNumberMarker>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key></Contents><IsTruncated>true</IsTruncated><Contents><Key>j</Key>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>k</Key></Contents><EncodingType>base64</EncodingType><Contents><Key>j</Key>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>a%</Key></Contents><EncodingType>url</EncodingType><Contents><Key>j</Key>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>a%zz</Key></Contents><EncodingType>url</EncodingType><Contents><Key>j</Key>"));
	T_EQ_INT(S3D_E_PROTOCOL, object_rc("<Key>a%00b</Key></Contents><EncodingType>url</EncodingType><Contents><Key>j</Key>"));
}

static void test_parse_time(void)
{
	int64_t t = -1;
	static const char *const junk[] = {
		"", "2009", "2009-10-12", "2009-10-12T17:50", " 2009-10-12T17:50:30Z",
		"2009-10-12T17:50:30Z ", "2009-10-12 17:50:30Z", "2009-1-12T17:50:30Z",
		"9-10-12T17:50:30.000Z", "2009-13-12T17:50:30Z", "2009-00-12T17:50:30Z",
		"2009-02-29T00:00:00Z", "2009-02-30T00:00:00Z", "2009-04-31T00:00:00Z",
		"2009-10-12T24:00:00Z", "2009-10-12T17:60:30Z", "2009-10-12T17:50:61Z",
		"2009-10-12T17:50:30.Z", "2009-10-12T17:50:30.0000000000Z",
		"2009-10-12T17:50:30.000ZZ", "2009-10-12T17:50:30+0100",
		"2009-10-12T17:50:30+01:60", "2009-10-12T17:50:30+25:00",
		"2009-10-12T17:50:30GMT", "+2009-10-12T17:50:30Z", "2009-10-12T17:50:30.000Z\n",
		"-009-10-12T17:50:30Z",
	};
	size_t i;

	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		if (s3d_xml_parse_time(junk[i], &t) != S3D_E_INVAL)
			T_FAIL_("accepted [%s]", junk[i]);
	}
	T_EQ_INT(S3D_E_INVAL, s3d_xml_parse_time(NULL, &t));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_parse_time("2009-10-12T17:50:30Z", NULL));
	T_EQ_INT(-1, t);

	T_EQ_INT(S3D_OK, s3d_xml_parse_time("2009-10-12T17:50:30.000Z", &t));
	T_EQ_INT(1255369830, t);
	T_EQ_INT(S3D_OK, s3d_xml_parse_time("2009-10-12T17:50:30Z", &t));
	T_EQ_INT(1255369830, t);
	T_EQ_INT(S3D_OK, s3d_xml_parse_time("2009-10-12T17:50:30.999999999Z", &t));
	T_EQ_INT(1255369830, t);
	T_EQ_INT(S3D_OK, s3d_xml_parse_time("2009-10-12T17:50:30", &t));
	T_EQ_INT(1255369830, t);
	T_EQ_INT(S3D_OK, s3d_xml_parse_time("2009-10-12T19:50:30.5+02:00", &t));
	T_EQ_INT(1255369830, t);
	T_EQ_INT(S3D_OK, s3d_xml_parse_time("2009-10-12T12:20:30-05:30", &t));
	T_EQ_INT(1255369830, t);
	T_EQ_INT(S3D_OK, s3d_xml_parse_time("2024-02-29T00:00:00.000Z", &t));
	T_EQ_INT(1709164800, t);
	T_EQ_INT(S3D_OK, s3d_xml_parse_time("1970-01-01T00:00:00.000Z", &t));
	T_EQ_INT(0, t);
	T_EQ_INT(S3D_OK, s3d_xml_parse_time("1969-12-31T23:59:59Z", &t));
	T_EQ_INT(-1, t);
}

/* ---- errors ---- */

static void test_error_bodies(void)
{
	static const char aws[] =
		XML_DECL "<Error>\n  <Code>NoSuchKey</Code>\n"
		"  <Message>The resource you requested does not exist</Message>\n"
		"  <Resource>/mybucket/myfoto.jpg</Resource>\n"
		"  <RequestId>4442587FB7D0A2F9</RequestId>\n"
		"  <HostId>eftixk72aD6Ap51TnqcoF8eFidJG9Z/2mkiDFu8yU9AS1ed4OpIszj7UDNEHGran</HostId>\n"
		"</Error>";
	static const char aws_no_id[] =
		"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
	static const char minio_ns[] =
		XML_DECL "<Error" NS_ATTR "><Code>NoSuchBucket</Code>"
		"<Message>The specified bucket does not exist</Message><Key>a/b</Key>"
		"<BucketName>nob</BucketName><Resource>/nob/a/b</Resource>"
		"<RequestId>17A3F1E2B3C4D5E6</RequestId>"
		"<HostId>dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8</HostId></Error>";
	static const char prefixed[] =
		"<s3:Error xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<s3:Code>AccessDenied</s3:Code><s3:Message>a &amp; b &lt;c&gt;</s3:Message></s3:Error>";
	s3d_error err;
	char longmsg[600];
	size_t i;

	s3d_error_clear(&err);
	err.http_status = 404;
	snprintf(err.resource, sizeof(err.resource), "GET b/k");
	T_EQ_INT(S3D_OK, s3d_xml_parse_error(aws, strlen(aws), &err));
	T_EQ_STR("NoSuchKey", err.code);
	T_EQ_STR("The resource you requested does not exist", err.message);
	T_EQ_STR("4442587FB7D0A2F9", err.request_id);
	T_EQ_INT(404, err.http_status);
	T_EQ_STR("GET b/k", err.resource);

	/* no RequestId in the body: the header's value stays */
	s3d_error_clear(&err);
	snprintf(err.request_id, sizeof(err.request_id), "FROM-HEADER");
	T_EQ_INT(S3D_OK, s3d_xml_parse_error(aws_no_id, strlen(aws_no_id), &err));
	T_EQ_STR("SlowDown", err.code);
	T_EQ_STR("FROM-HEADER", err.request_id);

	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_xml_parse_error(minio_ns, strlen(minio_ns), &err));
	T_EQ_STR("NoSuchBucket", err.code);
	T_EQ_STR("17A3F1E2B3C4D5E6", err.request_id);
	T_EQ_STR("", err.resource); /* Key of a plain error is not the resource */

	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_xml_parse_error(prefixed, strlen(prefixed), &err));
	T_EQ_STR("AccessDenied", err.code);
	T_EQ_STR("a & b <c>", err.message);
	T_EQ_INT(S3D_OK, s3d_xml_parse_error(prefixed, strlen(prefixed), NULL));
	T_EQ_INT(S3D_OK, s3d_xml_parse_error(LIT("<Error/>"), NULL));

	/* a long message is cut on a character boundary, never mid-sequence */
	memcpy(longmsg, "<Error><Message>", 16);
	for (i = 16; i < 16 + 3 * 120; i += 3)
		memcpy(longmsg + i, "\xe2\x82\xac", 3); /* EURO SIGN */
	snprintf(longmsg + i, sizeof(longmsg) - i, "</Message></Error>");
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_xml_parse_error(longmsg, strlen(longmsg), &err));
	T_EQ_INT(255 / 3 * 3, strlen(err.message));
	T_TRUE(memcmp(err.message, "\xe2\x82\xac", 3) == 0);
}

/* ---- list pages ---- */

static void test_list_objects_v2(void)
{
	static const char body[] =
		XML_DECL "<ListBucketResult" NS_ATTR ">\n"
		"  <Name>bucket</Name>\n  <Prefix/>\n  <KeyCount>4</KeyCount>\n"
		"  <MaxKeys>4</MaxKeys>\n  <Delimiter>/</Delimiter>\n"
		"  <IsTruncated>true</IsTruncated>\n"
		"  <ContinuationToken>prev</ContinuationToken>\n"
		"  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\n"
		"  <Contents>\n    <Key>my-image.jpg</Key>\n"
		"    <LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
		"    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>\n"
		"    <Size>434234</Size>\n    <StorageClass>STANDARD</StorageClass>\n"
		"    <Owner><ID>75aa</ID><DisplayName>me</DisplayName></Owner>\n  </Contents>\n"
		"  <CommonPrefixes><Prefix>photos/</Prefix></CommonPrefixes>\n"
		"  <Contents><Key>a &amp; b &lt;c&gt; \"q\" 'a'</Key><Size>0</Size>"
		"<ETag>\"d41d8cd98f00b204e9800998ecf8427e\"</ETag></Contents>\n"
		"  <Contents><Key>caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80 &#x41;</Key>"
		"<Size>1</Size></Contents>\n"
		"  <CommonPrefixes><Prefix>v&amp;w/</Prefix></CommonPrefixes>\n"
		"  <Contents><Key> </Key></Contents>\n"
		"  <Contents><Key><![CDATA[x<y>&z]]></Key></Contents>\n"
		"</ListBucketResult>";
	s3d_xml_page page;
	struct rec r = { 0 };

	s3d_xml_page_init(&page);
	T_EQ_INT(S3D_OK, list(body, S3D_ENTRY_OBJECT, &r, &page));
	T_EQ_INT(1, page.truncated);
	T_EQ_INT(0, page.stopped);
	T_EQ_INT(7, page.count);
	T_EQ_INT(7, r.n);
	T_EQ_STR("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=", s3d_buf_str(&page.next_token));

	T_EQ_INT(S3D_ENTRY_OBJECT, r.kinds[0]);
	T_EQ_STR("my-image.jpg", r.keys[0]);
	T_EQ_STR("\"fba9dede5f27731c9771645a39863328\"", r.etags[0]);
	T_EQ_INT(434234, r.sizes[0]);
	T_EQ_INT(1255369830, r.times[0]);
	T_EQ_STR("(null)", r.ids[0]);
	T_EQ_STR("(null)", r.sums[0]);
	T_EQ_INT(0, r.parts[0]);

	T_EQ_INT(S3D_ENTRY_PREFIX, r.kinds[1]);
	T_EQ_STR("photos/", r.keys[1]);
	T_EQ_STR("(null)", r.etags[1]);
	T_EQ_INT(-1, r.sizes[1]);

	T_EQ_STR("a & b <c> \"q\" 'a'", r.keys[2]);
	T_EQ_INT(0, r.sizes[2]);
	T_EQ_INT(0, r.times[2]); /* absent */
	T_EQ_STR("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80 A", r.keys[3]);
	T_EQ_INT(S3D_ENTRY_PREFIX, r.kinds[4]);
	T_EQ_STR("v&w/", r.keys[4]);
	T_EQ_STR(" ", r.keys[5]); /* a one-blank key is a key */
	T_EQ_STR("", r.etags[5]);
	T_EQ_INT(-1, r.sizes[5]);
	T_EQ_STR("x<y>&z", r.keys[6]);
	s3d_xml_page_cleanup(&page);
}

static void test_list_namespaces_and_encoding(void)
{
	static const char prefixed[] =
		"<s3:ListBucketResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<s3:IsTruncated>false</s3:IsTruncated>"
		"<s3:Contents><s3:Key>k1</s3:Key><s3:Size>5</s3:Size></s3:Contents>"
		"</s3:ListBucketResult>";
	static const char encoded[] =
		"<ListBucketResult" NS_ATTR "><EncodingType>url</EncodingType>"
		"<IsTruncated>false</IsTruncated>"
		"<Contents><Key>a+b%2Bc%20d%2F%E2%82%AC%01</Key></Contents>"
		"<CommonPrefixes><Prefix>dir%3F/</Prefix></CommonPrefixes>"
		"</ListBucketResult>";
	/* EncodingType may come last (ListMultipartUploads puts it there) */
	static const char uploads_encoded[] =
		"<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
		"<NextKeyMarker>n%26m+x</NextKeyMarker><NextUploadIdMarker>U2</NextUploadIdMarker>"
		"<Upload><Key>k%3C</Key><UploadId>U1</UploadId></Upload>"
		"<EncodingType>url</EncodingType></ListMultipartUploadsResult>";
	s3d_xml_page page;
	struct rec r = { 0 };
	s3d_buf b;

	s3d_xml_page_init(&page);
	T_EQ_INT(S3D_OK, list(prefixed, S3D_ENTRY_OBJECT, &r, &page));
	T_EQ_INT(1, r.n);
	T_EQ_STR("k1", r.keys[0]);
	T_EQ_INT(5, r.sizes[0]);
	T_EQ_INT(0, page.truncated);

	memset(&r, 0, sizeof(r));
	T_EQ_INT(S3D_OK, list(encoded, S3D_ENTRY_OBJECT, &r, &page));
	T_EQ_INT(2, r.n);
	T_EQ_STR("a b+c d/\xe2\x82\xac\x01", r.keys[0]);
	T_EQ_STR("dir?/", r.keys[1]);

	memset(&r, 0, sizeof(r));
	T_EQ_INT(S3D_OK, list(uploads_encoded, S3D_ENTRY_UPLOAD, &r, &page));
	T_EQ_STR("k<", r.keys[0]);
	T_EQ_STR("n&m x", s3d_buf_str(&page.next_token));
	T_EQ_STR("U2", s3d_buf_str(&page.next_upload_id_marker));

	/* encoded keys may take three bytes per byte, decoded they still must fit */
	s3d_buf_init(&b, 1u << 20);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListBucketResult><EncodingType>url</EncodingType>"
					     "<Contents><Key>"));
	for (int i = 0; i < 1024; i++)
		T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "%41"));
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</Key></Contents></ListBucketResult>"));
	memset(&r, 0, sizeof(r));
	T_EQ_INT(S3D_OK, list((char *)b.ptr, S3D_ENTRY_OBJECT, &r, &page));
	T_EQ_INT(1024, strlen(r.keys[0]));
	s3d_buf_reset(&b);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListBucketResult><EncodingType>url</EncodingType>"
					     "<Contents><Key>"));
	for (int i = 0; i < 1025; i++)
		T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "%41"));
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "</Key></Contents></ListBucketResult>"));
	T_EQ_INT(S3D_E_TOOBIG, list((char *)b.ptr, S3D_ENTRY_OBJECT, &r, &page));
	s3d_buf_cleanup(&b);
	s3d_xml_page_cleanup(&page);
}

static void test_list_multipart_uploads(void)
{
	static const char body[] =
		XML_DECL "<ListMultipartUploadsResult" NS_ATTR ">\n"
		"  <Bucket>bucket</Bucket>\n  <KeyMarker></KeyMarker>\n  <UploadIdMarker></UploadIdMarker>\n"
		"  <NextKeyMarker>my-movie.m2ts</NextKeyMarker>\n"
		"  <NextUploadIdMarker>YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ</NextUploadIdMarker>\n"
		"  <MaxUploads>3</MaxUploads>\n  <IsTruncated>true</IsTruncated>\n"
		"  <Upload>\n    <Key>my-divisor</Key>\n"
		"    <UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId>\n"
		"    <Initiator><ID>arn:aws:iam::111122223333:user/u</ID><DisplayName>u</DisplayName></Initiator>\n"
		"    <Owner><ID>75aa</ID><DisplayName>o</DisplayName></Owner>\n"
		"    <StorageClass>STANDARD</StorageClass>\n"
		"    <Initiated>2010-11-10T20:48:33.000Z</Initiated>\n  </Upload>\n"
		"  <Upload><Key>my-movie.m2ts</Key><UploadId>VXBsb2FkIElE&amp;2</UploadId>"
		"<Initiated>2010-11-10T20:48:33Z</Initiated></Upload>\n"
		"  <CommonPrefixes><Prefix>photos/</Prefix></CommonPrefixes>\n"
		"</ListMultipartUploadsResult>";
	s3d_xml_page page;
	struct rec r = { 0 };

	s3d_xml_page_init(&page);
	T_EQ_INT(S3D_OK, list(body, S3D_ENTRY_UPLOAD, &r, &page));
	T_EQ_INT(3, r.n);
	T_EQ_INT(1, page.truncated);
	T_EQ_STR("my-movie.m2ts", s3d_buf_str(&page.next_token));
	T_EQ_STR("YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ",
		 s3d_buf_str(&page.next_upload_id_marker));
	T_EQ_INT(S3D_ENTRY_UPLOAD, r.kinds[0]);
	T_EQ_STR("my-divisor", r.keys[0]);
	T_EQ_STR("XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw", r.ids[0]);
	T_EQ_INT(1289422113, r.times[0]);
	T_EQ_STR("(null)", r.etags[0]);
	T_EQ_INT(-1, r.sizes[0]);
	T_EQ_STR("VXBsb2FkIElE&2", r.ids[1]);
	T_EQ_INT(S3D_ENTRY_PREFIX, r.kinds[2]);
	T_EQ_STR("photos/", r.keys[2]);

	/* an upload without its id, or truncated without a key marker */
	T_EQ_INT(S3D_E_PROTOCOL, list("<ListMultipartUploadsResult><Upload><Key>k</Key></Upload>"
				      "</ListMultipartUploadsResult>", S3D_ENTRY_UPLOAD, &r, &page));
	T_EQ_INT(S3D_E_PROTOCOL, list("<ListMultipartUploadsResult><Upload><Key>k</Key><UploadId/>"
				      "</Upload></ListMultipartUploadsResult>", S3D_ENTRY_UPLOAD, &r, &page));
	T_EQ_INT(S3D_E_PROTOCOL, list("<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
				      "<NextKeyMarker></NextKeyMarker></ListMultipartUploadsResult>",
				      S3D_ENTRY_UPLOAD, &r, &page));
	/* a ListBucketResult is not an upload list */
	T_EQ_INT(S3D_E_PROTOCOL, list("<ListBucketResult/>", S3D_ENTRY_UPLOAD, &r, &page));
	s3d_xml_page_cleanup(&page);
}

static void test_list_parts(void)
{
	static const char body[] =
		XML_DECL "<ListPartsResult" NS_ATTR ">\n"
		"  <Bucket>example-bucket</Bucket>\n  <Key>example-object</Key>\n"
		"  <UploadId>XXBsb2FkIElEIGZvciBlbHZpbmcncyVcdS1tb3ZpZS5tMnRzEEEwbG9hZA</UploadId>\n"
		"  <StorageClass>STANDARD</StorageClass>\n"
		"  <PartNumberMarker>1</PartNumberMarker>\n"
		"  <NextPartNumberMarker>3</NextPartNumberMarker>\n"
		"  <MaxParts>2</MaxParts>\n  <IsTruncated>true</IsTruncated>\n"
		"  <Part>\n    <PartNumber>2</PartNumber>\n"
		"    <LastModified>2010-11-10T20:48:34.000Z</LastModified>\n"
		"    <ETag>\"7778aef83f66abc1fa1e8477f296d394\"</ETag>\n"
		"    <Size>10485760</Size>\n"
		"    <ChecksumSHA256>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</ChecksumSHA256>\n"
		"  </Part>\n"
		"  <Part><PartNumber>3</PartNumber><LastModified>2010-11-10T20:48:33.000Z</LastModified>"
		"<ETag>\"aaaa18db4cc2f85cedef654fccc4a4x8\"</ETag><Size>5</Size></Part>\n"
		"  <CommonPrefixes><Prefix>not-for-parts/</Prefix></CommonPrefixes>\n"
		"</ListPartsResult>";
	s3d_xml_page page;
	struct rec r = { 0 };

	s3d_xml_page_init(&page);
	T_EQ_INT(S3D_OK, list(body, S3D_ENTRY_PART, &r, &page));
	T_EQ_INT(2, r.n);
	T_EQ_INT(1, page.truncated);
	T_EQ_INT(3, page.next_part_number_marker);
	T_EQ_INT(S3D_ENTRY_PART, r.kinds[0]);
	T_EQ_INT(2, r.parts[0]);
	T_EQ_STR("\"7778aef83f66abc1fa1e8477f296d394\"", r.etags[0]);
	T_EQ_INT(10485760, r.sizes[0]);
	T_EQ_INT(1289422114, r.times[0]);
	T_EQ_STR("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", r.sums[0]);
	T_EQ_STR("(null)", r.keys[0]);
	T_EQ_STR("(null)", r.ids[0]);
	T_EQ_INT(3, r.parts[1]);
	T_EQ_STR("", r.sums[1]);
	T_EQ_INT(5, r.sizes[1]);
	s3d_xml_page_cleanup(&page);
}

/* The body is pushed in chunks: no value may depend on where a chunk ends. */
static void test_list_chunk_boundaries(void)
{
	s3d_buf b;
	s3d_xml_page page;
	struct rec r;
	size_t pad;

	s3d_buf_init(&b, 1u << 20);
	s3d_xml_page_init(&page);
	for (pad = 3950; pad < 4150; pad++) {
		s3d_buf_reset(&b);
		T_EQ_INT(S3D_OK, s3d_buf_appendz(&b, "<ListBucketResult" NS_ATTR ">"));
		repeat(&b, ' ', pad);
		T_EQ_INT(S3D_OK, s3d_buf_appendz(
			&b, "<Contents><Key> </Key></Contents><Contents><Key>a&amp;b &#x20AC;"
			    "<![CDATA[<c>]]>\xf0\x9f\x98\x80 </Key><Size>12345</Size></Contents>"
			    "<IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken>"
			    "</ListBucketResult>"));
		memset(&r, 0, sizeof(r));
		T_EQ_INT(S3D_OK, list((char *)b.ptr, S3D_ENTRY_OBJECT, &r, &page));
		T_EQ_INT(2, r.n);
		T_EQ_STR(" ", r.keys[0]);
		T_EQ_STR("a&b \xe2\x82\xac<c>\xf0\x9f\x98\x80 ", r.keys[1]);
		T_EQ_INT(12345, r.sizes[1]);
		T_EQ_STR("tok", s3d_buf_str(&page.next_token));
		if (t_checks_failed_in_case) {
			fprintf(stderr, "  at pad %zu\n", pad);
			break;
		}
	}
	s3d_xml_page_cleanup(&page);
	s3d_buf_cleanup(&b);
}

static void test_list_callback_stops(void)
{
	static const char body[] =
		"<ListBucketResult><IsTruncated>true</IsTruncated>"
		"<Contents><Key>a</Key></Contents><CommonPrefixes><Prefix>b/</Prefix>"
		"<Prefix>c/</Prefix></CommonPrefixes><Contents><Key>d</Key></Contents>"
		"<NextContinuationToken>T</NextContinuationToken></ListBucketResult>";
	s3d_xml_page page;
	struct rec r = { 0 };

	s3d_xml_page_init(&page);
	r.stop_at = 2;
	T_EQ_INT(S3D_OK, list(body, S3D_ENTRY_OBJECT, &r, &page));
	T_EQ_INT(2, r.n);
	T_EQ_INT(1, page.stopped);
	T_EQ_INT(2, page.count);
	T_EQ_INT(1, page.truncated); /* page fields are filled even when stopped */
	T_EQ_STR("T", s3d_buf_str(&page.next_token));
	T_EQ_STR("b/", r.keys[1]);

	memset(&r, 0, sizeof(r));
	r.stop_at = 3; /* second prefix of one CommonPrefixes */
	T_EQ_INT(S3D_OK, list(body, S3D_ENTRY_OBJECT, &r, &page));
	T_EQ_INT(3, r.n);
	T_EQ_STR("c/", r.keys[2]);

	memset(&r, 0, sizeof(r));
	T_EQ_INT(S3D_OK, list(body, S3D_ENTRY_OBJECT, &r, &page));
	T_EQ_INT(4, r.n);
	T_EQ_INT(0, page.stopped);
	T_EQ_STR("d", r.keys[3]);

	/* a later malformed entry: the callback never sees the good ones before it */
	memset(&r, 0, sizeof(r));
	T_EQ_INT(S3D_E_PROTOCOL, list("<ListBucketResult><Contents><Key>a</Key></Contents>"
				      "<Contents><Size>x</Size><Key>b</Key></Contents></ListBucketResult>",
				      S3D_ENTRY_OBJECT, &r, &page));
	T_EQ_INT(0, r.n);
	/* fn may be NULL: count only */
	T_EQ_INT(S3D_OK, s3d_xml_parse_list(body, strlen(body), S3D_ENTRY_OBJECT, NULL, NULL, &page));
	T_EQ_INT(4, page.count);
	s3d_xml_page_cleanup(&page);
}

/* ---- single results ---- */

static void test_initiate(void)
{
	static const char body[] =
		XML_DECL "<InitiateMultipartUploadResult" NS_ATTR ">\n"
		"  <Bucket>example-bucket</Bucket>\n  <Key>example-object</Key>\n"
		"  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>\n"
		"</InitiateMultipartUploadResult>";
	s3d_buf id;

	s3d_buf_init(&id, S3D_BUF_STR_MAX);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&id, "stale"));
	T_EQ_INT(S3D_OK, s3d_xml_parse_initiate(body, strlen(body), &id));
	T_EQ_STR("VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA", s3d_buf_str(&id));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_xml_parse_initiate(
		LIT("<InitiateMultipartUploadResult><Key>k</Key></InitiateMultipartUploadResult>"), &id));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_xml_parse_initiate(
		LIT("<InitiateMultipartUploadResult><UploadId/></InitiateMultipartUploadResult>"), &id));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_xml_parse_initiate(
		LIT("<InitiateMultipartUploadResult><UploadId>a</UploadId><UploadId>b</UploadId>"
		"</InitiateMultipartUploadResult>"), &id));
	T_EQ_STR("VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA", s3d_buf_str(&id));
	s3d_buf_cleanup(&id);
}

static void test_copy_results(void)
{
	static const char object[] =
		XML_DECL "<CopyObjectResult" NS_ATTR ">\n"
		"  <LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
		"  <ETag>\"9b2cf535f27731c974343645a3985328\"</ETag>\n</CopyObjectResult>";
	static const char part[] =
		"<CopyPartResult><LastModified>2010-11-10T20:48:33.000Z</LastModified>"
		"<ETag>&quot;b20b0f82f0f3c4d1f4c2f7b1d2b1e1a0&quot;</ETag>"
		"<ChecksumSHA256>x</ChecksumSHA256></CopyPartResult>";
	char etag[136];
	int64_t lm = 0;

	T_EQ_INT(S3D_OK, s3d_xml_parse_copy_result(object, strlen(object), etag, &lm));
	T_EQ_STR("\"9b2cf535f27731c974343645a3985328\"", etag);
	T_EQ_INT(1255369830, lm);
	T_EQ_INT(S3D_OK, s3d_xml_parse_copy_result(part, strlen(part), etag, &lm));
	T_EQ_STR("\"b20b0f82f0f3c4d1f4c2f7b1d2b1e1a0\"", etag);
	T_EQ_INT(1289422113, lm);
	T_EQ_INT(S3D_OK, s3d_xml_parse_copy_result(LIT("<CopyObjectResult><ETag>e</ETag></CopyObjectResult>"), etag, &lm));
	T_EQ_INT(0, lm);
	T_EQ_INT(S3D_E_PROTOCOL, s3d_xml_parse_copy_result(
		LIT("<CopyObjectResult><LastModified>2009-10-12T17:50:30.000Z</LastModified></CopyObjectResult>"), etag, &lm));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_xml_parse_copy_result(
		LIT("<CopyObjectResult><ETag>e</ETag><LastModified>soon</LastModified></CopyObjectResult>"), etag, &lm));
	T_EQ_STR("e", etag);
	/* a copy that failed inside a 200 is an <Error>: not a copy result */
	T_EQ_INT(S3D_E_PROTOCOL, s3d_xml_parse_copy_result(
		LIT("<Error><Code>InternalError</Code></Error>"), etag, &lm));
}

static void test_complete(void)
{
	static const char ok[] =
		XML_DECL "<CompleteMultipartUploadResult" NS_ATTR ">\n"
		"  <Location>http://Example-Bucket.s3.amazonaws.com/Example-Object</Location>\n"
		"  <Bucket>Example-Bucket</Bucket>\n  <Key>Example-Object</Key>\n"
		"  <ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>\n"
		"  <ChecksumSHA256>bEZ2dHqtz2HXq1R7w6gEbX1aGXC3m0X1U2Vw1Xbq9N0=-9</ChecksumSHA256>\n"
		"  <ChecksumType>COMPOSITE</ChecksumType>\n"
		"</CompleteMultipartUploadResult>";
	/* S3 keeps a long complete alive with blanks, then may report failure with 200 */
	static const char failed[] =
		"\n \n \n \n" XML_DECL "\n<Error>\n<Code>InternalError</Code>\n"
		"<Message>We encountered an internal error. Please try again.</Message>\n"
		"<RequestId>656c76696e6727732072657175657374</RequestId>\n"
		"<HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId>\n</Error>";
	static const char padded_ok[] =
		"   \n\n" XML_DECL "<CompleteMultipartUploadResult><ETag>\"e-2\"</ETag>"
		"</CompleteMultipartUploadResult>";
	s3d_obj_info info;
	s3d_error err;

	memset(&info, 0, sizeof(info));
	info.size = 42;
	s3d_error_clear(&err);
	T_EQ_INT(S3D_OK, s3d_xml_parse_complete(ok, strlen(ok), &info, &err));
	T_EQ_STR("\"3858f62230ac3c915f300c664312c11f-9\"", info.etag);
	T_EQ_STR("bEZ2dHqtz2HXq1R7w6gEbX1aGXC3m0X1U2Vw1Xbq9N0=-9", info.checksum_sha256);
	T_EQ_STR("COMPOSITE", info.checksum_type);
	T_EQ_INT(42, info.size);
	T_EQ_STR("", err.code);

	memset(&info, 0, sizeof(info));
	T_EQ_INT(S3D_OK, s3d_xml_parse_complete(padded_ok, strlen(padded_ok), &info, NULL));
	T_EQ_STR("\"e-2\"", info.etag);
	T_EQ_STR("", info.checksum_sha256);

	memset(&info, 0, sizeof(info));
	T_EQ_INT(S3D_E_S3, s3d_xml_parse_complete(failed, strlen(failed), &info, &err));
	T_EQ_STR("InternalError", err.code);
	T_EQ_STR("We encountered an internal error. Please try again.", err.message);
	T_EQ_STR("656c76696e6727732072657175657374", err.request_id);
	T_EQ_STR("", info.etag);
	T_EQ_INT(S3D_E_S3, s3d_xml_parse_complete(failed, strlen(failed), &info, NULL));

	T_EQ_INT(S3D_E_PROTOCOL, s3d_xml_parse_complete(
		LIT("<CompleteMultipartUploadResult><Key>k</Key></CompleteMultipartUploadResult>"),
		&info, &err));
	T_EQ_INT(S3D_E_PROTOCOL, s3d_xml_parse_complete(
		LIT("<CompleteMultipartUploadResult><ETag></ETag></CompleteMultipartUploadResult>"),
		&info, &err));
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_parse_complete(
		LIT("<CompleteMultipartUploadResult><ETag>e</ETag><ChecksumType>"
		"0123456789012345678901234567890123456789</ChecksumType></CompleteMultipartUploadResult>"), &info, &err));
	T_EQ_STR("", info.etag);
}

static void test_delete_result(void)
{
	static const char clean[] =
		XML_DECL "<DeleteResult" NS_ATTR ">\n"
		"  <Deleted><Key>sample1.txt</Key></Deleted>\n"
		"  <Deleted><Key>sample2.txt</Key><VersionId>v</VersionId></Deleted>\n</DeleteResult>";
	static const char errors[] =
		XML_DECL "<DeleteResult" NS_ATTR ">\n"
		"  <Deleted><Key>sample1.txt</Key></Deleted>\n"
		"  <Error><Key>a&amp;b.txt</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>\n"
		"  <Error><Key>c.txt</Key><Code>InternalError</Code><Message>later</Message></Error>\n"
		"</DeleteResult>";
	s3d_error first;
	int n = -1;

	s3d_error_clear(&first);
	T_EQ_INT(S3D_OK, s3d_xml_parse_delete_result(clean, strlen(clean), &n, &first));
	T_EQ_INT(0, n);
	T_EQ_STR("", first.code);
	T_EQ_INT(S3D_OK, s3d_xml_parse_delete_result(LIT("<DeleteResult/>"), &n, NULL));
	T_EQ_INT(0, n);

	T_EQ_INT(S3D_OK, s3d_xml_parse_delete_result(errors, strlen(errors), &n, &first));
	T_EQ_INT(2, n);
	T_EQ_STR("AccessDenied", first.code);
	T_EQ_STR("Access Denied", first.message);
	T_EQ_STR("a&b.txt", first.resource);
	n = -1;
	T_EQ_INT(S3D_OK, s3d_xml_parse_delete_result(errors, strlen(errors), &n, NULL));
	T_EQ_INT(2, n);
	/* NoSuchKey: gone already, counts as deleted; the next error is first */
	{
		static const char gone[] =
			XML_DECL "<DeleteResult" NS_ATTR ">\n"
			"  <Error><Key>x</Key><Code>NoSuchKey</Code><Message>gone</Message></Error>\n"
			"  <Error><Key>y</Key><Code>AccessDenied</Code><Message>no</Message></Error>\n"
			"</DeleteResult>";
		static const char only_gone[] =
			XML_DECL "<DeleteResult" NS_ATTR ">"
			"<Error><Key>x</Key><Code>NoSuchKey</Code><Message>gone</Message></Error>"
			"</DeleteResult>";

		s3d_error_clear(&first);
		T_EQ_INT(S3D_OK, s3d_xml_parse_delete_result(gone, strlen(gone), &n, &first));
		T_EQ_INT(1, n);
		T_EQ_STR("AccessDenied", first.code);
		T_EQ_STR("y", first.resource);
		s3d_error_clear(&first);
		T_EQ_INT(S3D_OK, s3d_xml_parse_delete_result(only_gone, strlen(only_gone), &n, &first));
		T_EQ_INT(0, n);
		T_EQ_STR("", first.code);
	}

	/* the whole request refused */
	s3d_error_clear(&first);
	n = -1;
	T_EQ_INT(S3D_E_S3, s3d_xml_parse_delete_result(
		LIT("<Error><Code>MalformedXML</Code><Message>m</Message></Error>"), &n, &first));
	T_EQ_STR("MalformedXML", first.code);
	T_EQ_INT(-1, n);
}

/* ---- request bodies, checked by parsing them back with libxml2 ---- */

struct texts {
	int n;
	char v[8][1100];
	char names[8][32];
};

/* Text of every leaf element under n, in document order (bounded). */
static void collect(xmlNodePtr n, struct texts *t)
{
	xmlChar *s;

	for (; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (n->children && n->children->type == XML_ELEMENT_NODE) {
			collect(n->children, t);
			continue;
		}
		if (t->n >= 8)
			return;
		s = xmlNodeGetContent(n);
		snprintf(t->v[t->n], sizeof(t->v[0]), "%s", s ? (char *)s : "(null)");
		snprintf(t->names[t->n], sizeof(t->names[0]), "%s", (const char *)n->name);
		t->n++;
		xmlFree(s);
	}
}

static int reparse(const s3d_buf *b, const char *root, struct texts *t)
{
	xmlDocPtr doc = xmlReadMemory((const char *)b->ptr, (int)b->len, NULL, NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlNodePtr r;
	int ok;

	memset(t, 0, sizeof(*t));
	if (!doc)
		return 0;
	r = xmlDocGetRootElement(doc);
	ok = r && xmlStrEqual(r->name, BAD_CAST root) && r->ns &&
	     xmlStrEqual(r->ns->href, BAD_CAST S3D_XML_NS);
	if (ok)
		collect(r->children, t);
	xmlFreeDoc(doc);
	return ok;
}

static void test_build_complete(void)
{
	s3d_part parts[3];
	s3d_buf out;
	struct texts t;

	memset(parts, 0, sizeof(parts));
	parts[0].number = 1;
	snprintf(parts[0].etag, sizeof(parts[0].etag), "\"a54357aff0632cce46d942af68356b38\"");
	snprintf(parts[0].checksum_sha256, sizeof(parts[0].checksum_sha256),
		 "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	parts[1].number = 2;
	snprintf(parts[1].etag, sizeof(parts[1].etag), "\"<&>'\"");
	parts[2].number = 10000;
	snprintf(parts[2].etag, sizeof(parts[2].etag), "W/\"\xc3\xa9\"");
	s3d_buf_init(&out, 1u << 20);

	T_EQ_INT(S3D_OK, s3d_xml_build_complete(parts, 3, &out));
	T_TRUE(strncmp((char *)out.ptr, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38) == 0);
	T_REQUIRE(reparse(&out, "CompleteMultipartUpload", &t));
	T_EQ_INT(7, t.n);
	T_EQ_STR("PartNumber", t.names[0]);
	T_EQ_STR("1", t.v[0]);
	T_EQ_STR("ETag", t.names[1]);
	T_EQ_STR("\"a54357aff0632cce46d942af68356b38\"", t.v[1]);
	T_EQ_STR("ChecksumSHA256", t.names[2]);
	T_EQ_STR("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", t.v[2]);
	T_EQ_STR("2", t.v[3]);
	T_EQ_STR("ETag", t.names[4]); /* no checksum element for part 2 */
	T_EQ_STR("\"<&>'\"", t.v[4]);
	T_EQ_STR("10000", t.v[5]);
	T_EQ_STR("W/\"\xc3\xa9\"", t.v[6]);

	/* invalid part lists leave out alone */
	s3d_buf_reset(&out);
	T_EQ_INT(S3D_OK, s3d_buf_appendz(&out, "keep"));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_complete(parts, 0, &out));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_complete(NULL, 1, &out));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_complete(parts, 1, NULL));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_complete(parts, 10001, &out));
	parts[1].number = 1; /* not ascending */
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_complete(parts, 2, &out));
	parts[1].number = 0;
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_complete(parts + 1, 1, &out));
	parts[1].number = 10001;
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_complete(parts + 1, 1, &out));
	parts[1].number = 2;
	parts[1].etag[0] = 0;
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_complete(parts, 2, &out));
	memset(parts[1].etag, 'e', sizeof(parts[1].etag)); /* not terminated in its field */
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_build_complete(parts, 2, &out));
	snprintf(parts[1].etag, sizeof(parts[1].etag), "\"\x01\"");
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_complete(parts, 2, &out));
	snprintf(parts[1].etag, sizeof(parts[1].etag), "\"ok\"");
	snprintf(parts[1].checksum_sha256, sizeof(parts[1].checksum_sha256), "\xc3\x28");
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_complete(parts, 2, &out));
	T_EQ_STR("keep", s3d_buf_str(&out));
	parts[1].checksum_sha256[0] = 0;
	s3d_buf_cleanup(&out);
	s3d_buf_init(&out, 64); /* the document does not fit */
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_build_complete(parts, 2, &out));
	s3d_buf_cleanup(&out);
}

static void test_build_complete_many(void)
{
	s3d_part *parts = calloc(S3D_XML_MAX_PARTS, sizeof(*parts));
	s3d_buf out;
	int i;

	T_REQUIRE(parts != NULL);
	for (i = 0; i < S3D_XML_MAX_PARTS; i++) {
		parts[i].number = i + 1;
		snprintf(parts[i].etag, sizeof(parts[i].etag), "\"%032d\"", i);
	}
	s3d_buf_init(&out, 4u << 20);
	T_EQ_INT(S3D_OK, s3d_xml_build_complete(parts, S3D_XML_MAX_PARTS, &out));
	T_TRUE(strstr((char *)out.ptr, "<PartNumber>10000</PartNumber>") != NULL);
	s3d_buf_cleanup(&out);
	free(parts);
}

static void test_build_delete(void)
{
	const char *keys[] = {
		"plain.txt",
		"a&b<c>d\"e'f",
		"caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80",
		"cr\rlf\ntab\t]]>",
		" ",
	};
	const char *bad[] = {
		"", "\xc3\x28", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\x01",
		"\xef\xbf\xbe", "trunc\xe2\x82", "\xb0\xad", "\xc1\x81", "\xe0\x80\x80",
		"\xf0\x80\x80\x80", "\xf8\x88\x80\x80\x80", "\xe2\x82\xac\x80",
	};
	char longkey[1026];
	const char *one[1];
	s3d_buf out;
	struct texts t;
	size_t i;

	s3d_buf_init(&out, 8u << 20);
	T_EQ_INT(S3D_OK, s3d_xml_build_delete(keys, 5, &out));
	T_REQUIRE(reparse(&out, "Delete", &t));
	T_EQ_INT(6, t.n);
	T_EQ_STR("Quiet", t.names[0]);
	T_EQ_STR("true", t.v[0]);
	for (i = 0; i < 5; i++) {
		T_EQ_STR("Key", t.names[i + 1]);
		T_EQ_STR(keys[i], t.v[i + 1]);
	}

	/* hostile and invalid keys: refused before anything is built */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		one[0] = bad[i];
		if (s3d_xml_build_delete(one, 1, &out) != S3D_E_INVAL)
			T_FAIL_("accepted bad key #%zu", i);
	}
	one[0] = NULL;
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_delete(one, 1, &out));
	memset(longkey, 'k', 1024);
	longkey[1024] = 0;
	one[0] = longkey;
	T_EQ_INT(S3D_OK, s3d_xml_build_delete(one, 1, &out));
	longkey[1024] = 'k';
	longkey[1025] = 0;
	T_EQ_INT(S3D_E_TOOBIG, s3d_xml_build_delete(one, 1, &out));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_delete(keys, 0, &out));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_delete(keys, 1001, &out));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_delete(NULL, 1, &out));
	T_EQ_INT(S3D_E_INVAL, s3d_xml_build_delete(keys, 1, NULL));
	s3d_buf_cleanup(&out);
}

static void test_build_delete_full_batch(void)
{
	static const char *keys[S3D_XML_MAX_DELETE];
	char *k = malloc(S3D_XML_MAX_DELETE * (size_t)1025);
	s3d_buf out;
	size_t i;

	T_REQUIRE(k != NULL);
	/* the worst case: 1000 keys of 1024 '"' (6 bytes each escaped) fits 8 MiB */
	memset(k, '"', S3D_XML_MAX_DELETE * (size_t)1025);
	for (i = 0; i < S3D_XML_MAX_DELETE; i++) {
		k[i * 1025 + 1024] = 0;
		keys[i] = k + i * 1025;
	}
	s3d_buf_init(&out, 8u << 20);
	T_EQ_INT(S3D_OK, s3d_xml_build_delete(keys, S3D_XML_MAX_DELETE, &out));
	T_TRUE(out.len > S3D_XML_MAX_DELETE * (size_t)1024);
	s3d_buf_cleanup(&out);
	free(k);
}

/* ---- threads ---- */

static void *parse_many(void *arg)
{
	static const char body[] =
		"<ListBucketResult><Contents><Key>a&amp;b</Key><Size>3</Size>"
		"<LastModified>2009-10-12T17:50:30.000Z</LastModified></Contents></ListBucketResult>";
	s3d_xml_page page;
	struct rec r;
	long bad = 0;
	int i;

	(void)arg;
	s3d_xml_page_init(&page);
	for (i = 0; i < 500; i++) {
		memset(&r, 0, sizeof(r));
		if (list(body, S3D_ENTRY_OBJECT, &r, &page) != S3D_OK || r.n != 1 ||
		    strcmp(r.keys[0], "a&b") != 0 || r.times[0] != 1255369830)
			bad++;
	}
	s3d_xml_page_cleanup(&page);
	return (void *)bad;
}

static void test_threads(void)
{
	pthread_t th[4];
	void *bad;
	int i;

	s3d_xml_global_init();
	s3d_xml_global_init(); /* idempotent */
	for (i = 0; i < 4; i++)
		T_REQUIRE(pthread_create(&th[i], NULL, parse_many, NULL) == 0);
	for (i = 0; i < 4; i++) {
		T_EQ_INT(0, pthread_join(th[i], &bad));
		T_EQ_INT(0, (long)bad);
	}
}

int main(void)
{
	T_RUN(test_hostile_empty_and_junk);
	T_RUN(test_hostile_doctype_and_entities);
	T_RUN(test_hostile_oversized_body);
	T_RUN(test_hostile_never_prints);
	T_RUN(test_hostile_entry_counts);
	T_RUN(test_hostile_field_sizes);
	T_RUN(test_hostile_values);
	T_RUN(test_parse_time);
	T_RUN(test_error_bodies);
	T_RUN(test_list_objects_v2);
	T_RUN(test_list_namespaces_and_encoding);
	T_RUN(test_list_multipart_uploads);
	T_RUN(test_list_parts);
	T_RUN(test_list_chunk_boundaries);
	T_RUN(test_list_callback_stops);
	T_RUN(test_initiate);
	T_RUN(test_copy_results);
	T_RUN(test_complete);
	T_RUN(test_delete_result);
	T_RUN(test_build_complete);
	T_RUN(test_build_complete_many);
	T_RUN(test_build_delete);
	T_RUN(test_build_delete_full_batch);
	T_RUN(test_threads);
	xmlCleanupParser();
	return t_done("s3_xml");
}
