/*
 * S3's XML: parsing its responses and building its request bodies, through
 * libxml2 (no hand-written parser or escaper). Private to the library.
 *
 * Every parser takes a response body as received: leading whitespace is
 * skipped (AWS pads a long CompleteMultipartUpload answer with it before the
 * XML declaration), and elements are matched on their local names only, so
 * bodies with or without xmlns="http://s3.amazonaws.com/doc/2006-03-01/" (or
 * any prefix) read the same.
 *
 * Hostile input. libxml2 never prints, never touches the network
 * (XML_PARSE_NONET), keeps its default limits (depth 256, no HUGE), decodes
 * the predefined entities (&amp; &lt; ...) and character references, and
 * treats every body as UTF-8 (a declared encoding is ignored). A body is
 * refused when:
 *  - it is over S3D_XML_MAX_BODY bytes (S3D_E_TOOBIG);
 *  - it has a DOCTYPE (S3D_E_PROTOCOL): the parse stops at the DOCTYPE,
 *    before a single entity is declared, so no entity is ever expanded and
 *    no DTD or external entity is ever loaded (S3 never sends one);
 *  - it has more than S3D_XML_MAX_NODES elements, attributes and namespace
 *    declarations (S3D_E_TOOBIG): this bounds the tree, its memory and
 *    every loop over it. Comments and processing instructions build no
 *    node; attributes are ignored (S3 sends none);
 *  - one tag, comment or PI runs past S3D_XML_MAX_MARKUP bytes, give or
 *    take one 4 KiB chunk (S3D_E_TOOBIG): the body goes through libxml2's
 *    push parser, which reads a tag only once it is complete, and libxml2
 *    2.9 checks the attributes of a tag in quadratic time.
 *
 * Errors shared by every parser: S3D_E_INVAL (a NULL required argument, or
 * body NULL with len > 0); S3D_E_PROTOCOL (empty body, XML that is not
 * well-formed, a DOCTYPE, the wrong root element, a required element
 * missing or given twice, an element inside a text field, a malformed or
 * out-of-range number, boolean or time); S3D_E_TOOBIG (the limits above, or
 * a value longer than the field or buffer it must go to: ETags, keys and
 * ids are never truncated); S3D_E_NOMEM. Unless a function says otherwise,
 * its out-parameters are written only when it returns S3D_OK.
 *
 * Thread safety: call s3d_xml_global_init once before threaded use (every
 * function here also calls it); after that every function is reentrant.
 */
#ifndef S3D_S3_XML_H
#define S3D_S3_XML_H

#include "s3direct.h"

#define S3D_XML_NS "http://s3.amazonaws.com/doc/2006-03-01/"

#define S3D_XML_MAX_BODY (16u * 1024u * 1024u) /* bytes, after leading blanks */
#define S3D_XML_MAX_NODES 200000L              /* elements + attributes + xmlns, per document */
#define S3D_XML_MAX_MARKUP (16u * 1024u)       /* one tag, comment or PI */
#define S3D_XML_MAX_ENTRIES 10000              /* list entries per page (S3 sends <= 1000) */
#define S3D_XML_KEY_MAX 1024                   /* object key, prefix: S3's own limit */
#define S3D_XML_ID_MAX 2048                    /* upload id */
#define S3D_XML_TOKEN_MAX 8192                 /* continuation token, key marker */
#define S3D_XML_MAX_PARTS 10000                /* parts in CompleteMultipartUpload */
#define S3D_XML_MAX_DELETE 1000                /* keys in one DeleteObjects */

/* xmlInitParser exactly once (pthread_once); idempotent, safe from any thread. */
void s3d_xml_global_init(void);

/*
 * Reads an <Error> document: Code, Message and RequestId into err->code,
 * err->message and err->request_id (each NUL-terminated, truncated to fit on
 * a UTF-8 character boundary; a field absent from the body is left as it
 * was; http_status, resource and the rest are not touched). err may be NULL
 * to only test the body. S3D_OK when body is an <Error>; S3D_E_PROTOCOL when
 * it is not XML or its root is not <Error> (err untouched).
 */
int s3d_xml_parse_error(const char *body, size_t len, s3d_error *err);

/*
 * What one list page says beyond its entries. Caller owns it:
 * s3d_xml_page_init, then s3d_xml_page_cleanup frees the buffers.
 */
typedef struct s3d_xml_page {
	int truncated;            /* IsTruncated */
	int stopped;              /* the callback asked to stop */
	int count;                /* entries delivered to the callback */
	/* NextContinuationToken (ListObjectsV2) or NextKeyMarker
	   (ListMultipartUploads; URL-decoded when EncodingType=url);
	   max S3D_XML_TOKEN_MAX */
	s3d_buf next_token;
	s3d_buf next_upload_id_marker; /* ListMultipartUploads; max S3D_XML_ID_MAX */
	int next_part_number_marker;   /* ListParts; 0 when absent */
} s3d_xml_page;

void s3d_xml_page_init(s3d_xml_page *page);
void s3d_xml_page_cleanup(s3d_xml_page *page);

/*
 * Parses one list page and calls fn (may be NULL) for each entry in
 * document order:
 *   S3D_ENTRY_OBJECT: <ListBucketResult> (ListObjectsV2): each <Contents>
 *     (Key, ETag, Size, LastModified) as S3D_ENTRY_OBJECT and each
 *     <CommonPrefixes><Prefix> as S3D_ENTRY_PREFIX;
 *   S3D_ENTRY_UPLOAD: <ListMultipartUploadsResult>: each <Upload> (Key,
 *     UploadId, Initiated as last_modified) as S3D_ENTRY_UPLOAD, and
 *     <CommonPrefixes><Prefix> as S3D_ENTRY_PREFIX;
 *   S3D_ENTRY_PART: <ListPartsResult>: each <Part> (PartNumber, ETag, Size,
 *     LastModified, ChecksumSHA256) as S3D_ENTRY_PART.
 * In an entry, the fields of its kind are never NULL ("" / -1 / 0 when the
 * server left them out), the others are NULL / -1 / 0; every string is
 * borrowed for the duration of the callback. Keys and prefixes are
 * non-empty and at most S3D_XML_KEY_MAX bytes; with <EncodingType>url
 * they are URL-decoded first (a decoded NUL is malformed). ETags fit
 * s3d_part.etag, checksums s3d_part.checksum_sha256, part numbers are
 * 1..10000, sizes >= 0.
 *
 * The whole page is checked before fn is first called, so fn sees either
 * every entry or none. A non-zero return from fn stops the walk: the call
 * still returns S3D_OK, with page->stopped set and page->count counting the
 * entry that stopped it. page is reset first (its buffers keep their max)
 * and is filled also when fn stops. A truncated page without its resume
 * marker (NextContinuationToken, NextKeyMarker, NextPartNumberMarker) is
 * S3D_E_PROTOCOL. More than S3D_XML_MAX_ENTRIES entries: S3D_E_TOOBIG.
 * Errors: the shared ones; S3D_E_INVAL for an unknown kind. On error page
 * may be partly filled and fn has not been called.
 */
int s3d_xml_parse_list(const char *body, size_t len, int kind, s3d_list_fn fn,
		       void *ud, s3d_xml_page *page);

/*
 * <InitiateMultipartUploadResult><UploadId>: upload_id is reset and
 * receives the id, which is non-empty (else S3D_E_PROTOCOL) and at most
 * S3D_XML_ID_MAX and upload_id->max bytes (else S3D_E_TOOBIG). On error
 * upload_id is unchanged (empty after S3D_E_NOMEM).
 */
int s3d_xml_parse_initiate(const char *body, size_t len, s3d_buf *upload_id);

/*
 * <CopyObjectResult> or <CopyPartResult>: ETag (required, quotes kept) into
 * etag and LastModified into *last_modified (0 when absent). An <Error> body
 * (S3 may answer a copy with 200 and an error) is S3D_E_PROTOCOL here: test
 * it with s3d_xml_parse_error first.
 */
int s3d_xml_parse_copy_result(const char *body, size_t len, char etag[136],
			      int64_t *last_modified);

/*
 * <CompleteMultipartUploadResult>: ETag (required) into out->etag;
 * ChecksumSHA256 and ChecksumType, when present, into out's fields of that
 * name (other fields untouched). An <Error> body (S3 answers 200 and reports
 * a failed complete in the body) fills err (may be NULL) as
 * s3d_xml_parse_error does and returns S3D_E_S3, out untouched.
 */
int s3d_xml_parse_complete(const char *body, size_t len, s3d_obj_info *out,
			   s3d_error *err);

/*
 * <DeleteResult>: *nerrors receives the number of <Error> entries, not
 * counting NoSuchKey ones (a key already gone is deleted, as AWS reports
 * it), and first (may be NULL) the first counted one's Code, Message, and Key as resource
 * (truncated to fit). A top-level <Error> body fills first likewise and
 * returns S3D_E_S3 (*nerrors untouched).
 */
int s3d_xml_parse_delete_result(const char *body, size_t len, int *nerrors,
				s3d_error *first);

/*
 * Builds <CompleteMultipartUpload xmlns=S3><Part><PartNumber/><ETag/>
 * [<ChecksumSHA256/>]</Part>...: on success out is reset and holds the
 * UTF-8 document (XML declaration included), escaped by libxml2; on error
 * out is unchanged (empty after S3D_E_NOMEM). n is 1..S3D_XML_MAX_PARTS,
 * part numbers 1..10000 and strictly ascending; an empty checksum_sha256
 * is left out. Errors: S3D_E_INVAL (bad n or numbers, an empty etag, text
 * that is not well-formed UTF-8 made of XML 1.0 characters); S3D_E_TOOBIG
 * (an etag or checksum not NUL-terminated within its field, or the document
 * over out->max); S3D_E_NOMEM.
 */
int s3d_xml_build_complete(const s3d_part *parts, size_t n, s3d_buf *out);

/*
 * Builds <Delete xmlns=S3><Quiet>true</Quiet><Object><Key/></Object>...,
 * out as for s3d_xml_build_complete. n is 1..S3D_XML_MAX_DELETE.
 * Errors: S3D_E_INVAL (bad n, a NULL or empty key, a key that is not
 * well-formed UTF-8 made of XML 1.0 characters: such a key cannot travel
 * in XML); S3D_E_TOOBIG (a key over S3D_XML_KEY_MAX bytes, or the document
 * over out->max: 1000 keys of 1024 '"' need about 6.2 MB); S3D_E_NOMEM.
 */
int s3d_xml_build_delete(const char *const *keys, size_t n, s3d_buf *out);

/*
 * "2009-10-12T17:50:30.000Z" into unix seconds (fraction dropped). The
 * fraction (1-9 digits) is optional; the zone is "Z", "+hh:mm", "-hh:mm" or
 * absent (UTC). No surrounding blanks, no impossible dates (Feb 30), no
 * short fields. S3D_E_INVAL on junk or a NULL argument.
 */
int s3d_xml_parse_time(const char *s, int64_t *out);

#endif
