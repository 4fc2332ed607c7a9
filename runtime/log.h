/* log — structured logs to stderr, one line per record.
 * JSON format (default, AWS_LAMBDA_LOG_FORMAT=JSON): one object per line with
 * "timestamp" (RFC 3339, UTC, milliseconds), "level", "requestId" (when known),
 * "message", and any extra fields. Text format: "<timestamp> <LEVEL> <requestId>
 * <message> key=value ...". Records below the configured level are dropped.
 * Lines are written whole under a lock, so threads never interleave. JSON
 * encoding uses lua-cjson on a private Lua state owned by this module.
 * Never pass secrets (Authorization headers, keys, tokens) as fields. */
#ifndef TH_LOG_H
#define TH_LOG_H

typedef enum th_log_level {
  TH_LOG_TRACE, TH_LOG_DEBUG, TH_LOG_INFO, TH_LOG_WARN, TH_LOG_ERROR, TH_LOG_FATAL
} th_log_level;

typedef struct th_log_field {
  const char *key;
  const char *str; /* string value, or NULL to use num */
  double num;
} th_log_field;

#define TH_LOG_STR(k, v) ((th_log_field){(k), th_log_str_or_empty(v), 0})
#define TH_LOG_NUM(k, v) ((th_log_field){(k), NULL, (double)(v)})

static inline const char *th_log_str_or_empty(const char *s) { return s ? s : ""; }

/* Parses "TRACE".."FATAL" (any case); returns -1 when unknown. */
int th_log_level_parse(const char *s);
void th_log_configure(th_log_level min_level, int json);
int th_log_enabled(th_log_level level);
void th_log(th_log_level level, const char *request_id, const char *message,
            const th_log_field *fields, int nfields);
/* Releases the module's private state (at exit). */
void th_log_shutdown(void);

#endif
