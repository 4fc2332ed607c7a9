/* event — API Gateway proxy events (REST payload 1.0, HTTP API payload 2.0)
 * to the one request table routes see, and responses back to the event's own
 * format. Also the HTTP ⇄ payload-2.0 bridge used by --serve, so local HTTP
 * takes the path Lambda takes.
 *
 * Pure: no clock, no environment, no I/O. JSON work uses the cjson instance of
 * the given state (th_json_setup), so every function here must run inside a
 * protected call; they raise only on out-of-memory, and report bad input
 * through their return value.
 *
 * The request table: method, path, raw_path, path_params, query (last value
 * per name), multi_query (lists), headers (lower-cased names; repeated values
 * joined with ","; v2 cookies as "cookie"), body (string, base64 already
 * decoded; nil when absent), request_id, api_request_id, source_ip, claims,
 * authorizer, stage, version.
 *
 * path is the path relative to the API ("/tasks/7"), trailing slashes removed;
 * raw_path is the path the client sent (requestContext.path for 1.0, rawPath
 * for 2.0), stage or base path included.
 *  - 2.0: rawPath, less "/<stage>" once when the stage is not $default (HTTP
 *    APIs prefix a named stage, on a custom domain too; an API mapping key is
 *    not in rawPath).
 *  - 1.0: `path`, which never holds a REST API's stage (only requestContext.path
 *    does). Behind a custom domain with a base-path mapping it starts with the
 *    base path ("/v1/tasks/7", resource "/tasks/{id}"); an HTTP API prefixes a
 *    named stage. When `path` ends, at a segment boundary, with `resource`
 *    filled in from pathParameters, the part before is dropped; with resource
 *    "$default" (an HTTP API's default route) the stage is dropped as for 2.0;
 *    otherwise `path` is taken as given.
 */
#ifndef TH_EVENT_H
#define TH_EVENT_H

#include <lua.h>

#include "common.h"

typedef enum th_event_version { TH_EVENT_V1 = 1, TH_EVENT_V2 = 2 } th_event_version;

typedef struct th_event_info {
  th_event_version version;
  int body_invalid;   /* declared base64 but is not: the host answers 400 */
  size_t body_len;    /* decoded body length (for the size limit) */
} th_event_info;

/* Decodes the event text and pushes the request table. TH_ERR_INVALID (with
 * err, nothing pushed) when the text is not an API Gateway proxy event. */
th_result th_event_push_request(lua_State *L, const char *json, size_t len, th_event_info *info,
                                char *err, size_t errlen);

/* Pushes the proxy response JSON for the response table at idx, which the
 * host has normalised to {status=int, headers={name=string}, body=string}. */
void th_event_push_response_json(lua_State *L, int idx, th_event_version version);

/* --serve: one HTTP request, as received. */
typedef struct th_http_request {
  const char *method;
  const char *path;      /* decoded path, without the query */
  const char *raw_query; /* as sent, without '?'; "" when none */
  const char *const *header_names;
  const char *const *header_values;
  size_t nheaders;
  const char *body;
  size_t body_len;
  const char *source_ip;
  const char *request_id;
  long long time_epoch_ms;
  const char *owner; /* not in the event: th_invoke_ctx.owner (host.h); NULL: auth off */
} th_http_request;

/* Pushes the payload-2.0 event JSON an HTTP API would send for r. */
void th_event_push_v2_from_http(lua_State *L, const th_http_request *r);

/* --serve: the proxy response decoded back to HTTP. Owns its strings. */
typedef struct th_http_response {
  int status;
  size_t nheaders;
  char **header_names;
  char **header_values;
  char *body;
  size_t body_len;
} th_http_response;

/* Reads a payload-2.0 proxy response JSON into out (body base64-decoded when
 * flagged). TH_ERR_INVALID when it is not one. */
th_result th_event_read_v2_response(lua_State *L, const char *json, size_t len,
                                    th_http_response *out);
void th_http_response_free(th_http_response *r);

/* Strict base64 (standard alphabet, padding optional, no other characters).
 * *out is malloc'd (caller frees). TH_ERR_INVALID when s is not base64. */
th_result th_base64_decode(const char *s, size_t len, char **out, size_t *out_len);
/* *out is malloc'd, NUL-terminated (caller frees). */
th_result th_base64_encode(const char *s, size_t len, char **out);

#endif
