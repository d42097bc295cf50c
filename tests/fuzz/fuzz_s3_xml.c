/*
 * libFuzzer target for s3_xml: every response parser on the input, plus
 * parse_time and build_delete (whose output must parse back, through
 * libxml2, to the same key). Invariants the header promises are checked
 * with abort(), so a violation is a crash like any memory error.
 *
 *   clang -fsanitize=fuzzer,address,undefined ... fuzz_s3_xml.c s3_xml.c buf.c err.c
 *   gcc -fsanitize=address,undefined ... fuzz_s3_xml.c replay_main.c s3_xml.c buf.c err.c
 */
#include "s3_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	int stop_at;
	int n;
};

static int check_entry(void *ud, const s3d_list_entry *e)
{
	struct seen *s = ud;

	if (e->kind == S3D_ENTRY_PART) {
		if (e->key || e->part_number < 1 || e->part_number > 10000 || !e->etag ||
		    strlen(e->etag) >= 136 || !e->checksum_sha256 ||
		    strlen(e->checksum_sha256) >= 64 || e->size < -1)
			abort();
	} else {
		if (!e->key || !e->key[0] || strlen(e->key) > S3D_XML_KEY_MAX)
			abort();
		if (e->kind == S3D_ENTRY_UPLOAD && (!e->upload_id || !e->upload_id[0]))
			abort();
		if (e->kind == S3D_ENTRY_OBJECT && (!e->etag || strlen(e->etag) >= 136))
			abort();
	}
	return ++s->n == s->stop_at;
}

static void parse_all(const char *body, size_t len, int stop_at)
{
	static const int kinds[] = { S3D_ENTRY_OBJECT, S3D_ENTRY_UPLOAD, S3D_ENTRY_PART };
	s3d_error err;
	s3d_xml_page page;
	s3d_obj_info info;
	s3d_buf id;
	struct seen s;
	char etag[136];
	int64_t lm;
	int nerr, rc;
	size_t k;

	s3d_error_clear(&err);
	(void)s3d_xml_parse_error(body, len, &err);
	if (strlen(err.code) >= sizeof(err.code) || strlen(err.message) >= sizeof(err.message))
		abort();
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		s.stop_at = stop_at;
		s.n = 0;
		s3d_xml_page_init(&page);
		rc = s3d_xml_parse_list(body, len, kinds[k], check_entry, &s, &page);
		if (rc != S3D_OK && s.n != 0)
			abort(); /* a refused page reaches no callback */
		if (rc == S3D_OK && (page.count != s.n || page.count > S3D_XML_MAX_ENTRIES))
			abort();
		s3d_xml_page_cleanup(&page);
	}
	s3d_buf_init(&id, 64u * 1024u);
	if (s3d_xml_parse_initiate(body, len, &id) == S3D_OK && id.len == 0)
		abort();
	s3d_buf_cleanup(&id);
	(void)s3d_xml_parse_copy_result(body, len, etag, &lm);
	memset(&info, 0, sizeof(info));
	(void)s3d_xml_parse_complete(body, len, &info, &err);
	(void)s3d_xml_parse_delete_result(body, len, &nerr, &err);
}

/* build_delete(input as one key) must give XML whose <Key> is the key. */
static void round_trip_key(const uint8_t *data, size_t size)
{
	char key[S3D_XML_KEY_MAX + 1];
	const char *keys[1] = { key };
	s3d_buf out;
	xmlDocPtr doc;
	xmlNodePtr n;
	xmlChar *got;

	if (size > S3D_XML_KEY_MAX)
		size = S3D_XML_KEY_MAX;
	memcpy(key, data, size);
	key[size] = 0;
	s3d_buf_init(&out, 1u << 20);
	if (s3d_xml_build_delete(keys, 1, &out) == S3D_OK) {
		doc = xmlReadMemory((const char *)out.ptr, (int)out.len, NULL, NULL,
				    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
		if (!doc)
			abort();
		n = xmlDocGetRootElement(doc);            /* Delete */
		n = n ? xmlFirstElementChild(n) : NULL;   /* Quiet */
		n = n ? xmlNextElementSibling(n) : NULL;  /* Object */
		n = n ? xmlFirstElementChild(n) : NULL;   /* Key */
		got = n ? xmlNodeGetContent(n) : NULL;
		if (!got || strcmp((const char *)got, key) != 0)
			abort();
		xmlFree(got);
		xmlFreeDoc(doc);
	}
	s3d_buf_cleanup(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char t[64];
	int64_t when;
	size_t n = size < sizeof(t) - 1 ? size : sizeof(t) - 1;

	parse_all((const char *)data, size, size ? data[size - 1] % 4 : 0);
	memcpy(t, data, n);
	t[n] = 0;
	(void)s3d_xml_parse_time(t, &when);
	round_trip_key(data, size);
	return 0;
}
