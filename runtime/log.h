/* log — structured logs to stderr, one line per record.
 * JSON format (default, AWS_LAMBDA_LOG_FORMAT=JSON): one object per line with
 * the core fields "timestamp" (RFC 3339, UTC, milliseconds), "level",
 * "requestId" (when known) and "message", then the record's fields. Text
 * format: "<timestamp> <LEVEL> <requestId or -> <message> key=value ...".
 * The core fields are the logger's alone. Fields come in two groups: the C
 * core's, written beside the core fields, and nested ones (a route script's),
 * written inside one object "fields" (Text: "fields.key=value"). A top-level
 * field named like a core field or "fields" goes into "fields" too, so no
 * field ever replaces a core one.
 * Every line decodes as strict UTF-8 whatever the strings hold: in the
 * message, the request id, every key and every string value, each ill-formed
 * UTF-8 unit (see utf8.h) is written as U+FFFD, and control characters are
 * escaped (JSON: \uXXXX; Text: \xHH), so no value can end a line or forge
 * another. Two keys that differ only in ill-formed bytes then read the same:
 * one of the two values is written. A number that is not finite is written
 * as the string "inf", "-inf" or "nan" (JSON has no such numbers).
 * Records below the configured level are dropped. Lines are written whole
 * under a lock, so threads never interleave. JSON encoding uses lua-cjson on
 * a private Lua state owned by this module; when that state cannot be made or
 * runs out of memory, the line still is JSON: the timestamp, the level and a
 * message saying the record was lost.
 * Never pass secrets (Authorization headers, keys, tokens) as fields. */
#ifndef TH_LOG_H
#define TH_LOG_H

#include <stddef.h>

typedef enum th_log_level {
  TH_LOG_TRACE, TH_LOG_DEBUG, TH_LOG_INFO, TH_LOG_WARN, TH_LOG_ERROR, TH_LOG_FATAL
} th_log_level;

/* A length meaning "up to the terminating NUL". */
#define TH_LOG_NUL_ENDED ((size_t)-1)

typedef struct th_log_field {
  const char *key;
  const char *str; /* string value, or NULL to use num */
  double num;
  size_t key_len;  /* bytes of key, or TH_LOG_NUL_ENDED */
  size_t str_len;  /* bytes of str (may hold NUL), or TH_LOG_NUL_ENDED */
} th_log_field;

#define TH_LOG_STR(k, v) \
  ((th_log_field){(k), th_log_str_or_empty(v), 0, TH_LOG_NUL_ENDED, TH_LOG_NUL_ENDED})
#define TH_LOG_LSTR(k, v, n) ((th_log_field){(k), (v), 0, TH_LOG_NUL_ENDED, (n)})
#define TH_LOG_NUM(k, v) ((th_log_field){(k), NULL, (double)(v), TH_LOG_NUL_ENDED, 0})

static inline const char *th_log_str_or_empty(const char *s) { return s ? s : ""; }

/* Parses "TRACE".."FATAL" (any case); returns -1 when unknown. */
int th_log_level_parse(const char *s);
/* "TRACE".."FATAL". */
const char *th_log_level_name(th_log_level level);
void th_log_configure(th_log_level min_level, int json);
int th_log_enabled(th_log_level level);
/* A record with the C core's fields. request_id may be NULL. */
void th_log(th_log_level level, const char *request_id, const char *message,
            const th_log_field *fields, int nfields);
/* The general form: message of message_len bytes (or TH_LOG_NUL_ENDED), the
 * C core's fields, and the nested fields (a route script's). */
void th_log_record(th_log_level level, const char *request_id, const char *message,
                   size_t message_len, const th_log_field *fields, int nfields,
                   const th_log_field *nested, int nnested);
/* Releases the module's private state (at exit). */
void th_log_shutdown(void);

#endif
