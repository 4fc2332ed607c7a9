/* The sandboxed Lua host and the request pipeline (see host.h). */
#include "host.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <uuid/uuid.h>

#include "auth.h"
#include "event.h"
#include "log.h"
#include "lua_modules.h"
#include "precond.h"
#include "utf8.h"

#define HOOK_EVERY 1000        /* instructions between budget checks */
/* The store's deadline comes this much before the route's (at most a tenth
 * of the time the route has): a store call that gives up at its deadline
 * hands the route its error while the route can still answer it (a 503),
 * rather than the budget hook stopping the route with a 500 a few
 * instructions later. */
#define STORE_RESERVE_MS 50.0
#define MAX_SCRIPT_BYTES (1 << 20)

typedef enum { STOP_NONE, STOP_BUDGET, STOP_DEADLINE } stop_reason;

struct th_host {
  const th_config *cfg;
  th_auth *auth;
  th_store_binding binding;
  lua_State *L;
  size_t mem_used;
  size_t mem_limit;
  int mem_failed;          /* the allocator refused during this call */
  int route_failed;        /* the route raised during this call */
  long long instructions;  /* used by the current call */
  long long budget;
  double deadline_ms;
  stop_reason stopped;
  unsigned long long scripts_sig; /* fingerprint of the loaded *.lua files */
  unsigned long long bad_sig;     /* fingerprint whose load failed (logged once) */
  char *extra_dir;         /* th_host_run_script: the test script's folder */
  int print_to_stdout;
};

/* ---- allocator with a cap ---- */

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  th_host *h = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    h->mem_used -= old;
    return NULL;
  }
  if (nsize > old && h->mem_used - old + nsize > h->mem_limit) {
    h->mem_failed = 1;
    return NULL;
  }
  /* malloc for a new block: realloc(NULL, n) is malloc behind one more call */
  void *p = ptr ? realloc(ptr, nsize) : malloc(nsize);
  if (!p) {
    h->mem_failed = 1;
    return NULL;
  }
  h->mem_used = h->mem_used - old + nsize;
  return p;
}

static th_host *host_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

/* ---- budget: a count hook that re-arms itself once the script must stop,
 * so a script's own pcall cannot swallow the stop ---- */

static void budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  th_host *h = host_of(L);
  if (h->stopped == STOP_NONE) {
    h->instructions += HOOK_EVERY;
    if (h->instructions > h->budget)
      h->stopped = STOP_BUDGET;
    else if (h->deadline_ms > 0 && th_now_ms() > h->deadline_ms)
      h->stopped = STOP_DEADLINE;
    else
      return;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
  }
  luaL_error(L, "script stopped: %s",
             h->stopped == STOP_BUDGET ? "instruction budget exhausted" : "deadline reached");
}

static void arm_budget(th_host *h, double deadline_ms) {
  h->instructions = 0;
  h->budget = h->cfg->lua_instructions;
  h->stopped = STOP_NONE;
  h->mem_failed = 0;
  h->route_failed = 0;
  h->deadline_ms = deadline_ms;
  lua_sethook(h->L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static void disarm_budget(th_host *h) {
  if (h->L)
    lua_sethook(h->L, NULL, 0, 0);
}

/* ---- sandbox ---- */

/* Message handler for route calls. It runs no script code (no __tostring):
 * after the budget hook raises, Lua calls the handler with hooks disabled, so
 * script code here could never be stopped. */
static int traceback_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg)
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* xpcall(f, msgh, ...) for scripts. Lua runs a message handler with hooks off
 * when the error came from the budget hook, so a handler that loops would
 * escape the budget. Here the handler runs after the error has unwound, as an
 * ordinary protected call with the hook active again. */
static int sandbox_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  for (int i = 3; i <= n; i++)
    lua_pushvalue(L, i);
  int base = n + 1; /* the handler's slot */
  if (lua_pcall(L, n - 2, LUA_MULTRET, 0) == LUA_OK) {
    lua_pushboolean(L, 1);
    lua_replace(L, base);
    return lua_gettop(L) - base + 1;
  }
  /* stack: ..., handler, error */
  int status = lua_pcall(L, 1, 1, 0);
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  if (status != LUA_OK && status != LUA_ERRRUN)
    return lua_error(L); /* out of memory: not the script's to catch */
  return 2;
}

/* setmetatable for scripts: no __gc. Finalizers run with hooks disabled, so a
 * looping __gc could never be stopped (and would run again at lua_close). */
static int sandbox_setmetatable(lua_State *L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "__gc metamethods are not allowed in route scripts");
    lua_pop(L, 1);
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "th.setmetatable");
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* print: to the log (or stdout for test scripts); never to the proxy output. */
static int sandbox_print(lua_State *L) {
  th_host *h = host_of(L);
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  if (h->print_to_stdout) {
    fputs(lua_tostring(L, -1), stdout);
    fputc('\n', stdout);
    fflush(stdout);
  } else {
    size_t len;
    const char *line = lua_tolstring(L, -1, &len);
    th_log_record(TH_LOG_INFO, th_lua_request_id(L), line, len, NULL, 0, NULL, 0);
  }
  return 0;
}

static int valid_module_name(const char *name) {
  if (!*name || strlen(name) > 64 || name[0] == '.')
    return 0;
  for (const char *p = name; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || (c == '.' && p[1] != '.' && p[1] != '\0')))
      return 0;
  }
  return 1;
}

/* Reads a whole script (at most MAX_SCRIPT_BYTES). Returns malloc'd text
 * (caller frees), or NULL with the reason in err. */
static char *read_text_file(const char *path, size_t *len, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
    errno = e; /* read_script tells "absent" from "unreadable" by it */
    return NULL;
  }
  char *text = malloc(MAX_SCRIPT_BYTES + 1);
  size_t n = text ? fread(text, 1, MAX_SCRIPT_BYTES + 1, f) : 0;
  int failed = ferror(f);
  fclose(f);
  if (!text || failed || n > MAX_SCRIPT_BYTES) {
    snprintf(err, errlen, "cannot read %s: %s", path,
             !text ? "out of memory" : failed ? "read error" : "larger than 1 MiB");
    free(text);
    return NULL;
  }
  text[n] = '\0';
  *len = n;
  return text;
}

/* Reads dir/<name with . → />.lua. NULL with err when it is absent or
 * unreadable; *missing tells the two apart. */
static char *read_script(const char *dir, const char *name, char *path, size_t pathlen,
                         size_t *len, int *missing, char *err, size_t errlen) {
  snprintf(path, pathlen, "%s/%s.lua", dir, name);
  for (char *p = path + strlen(dir) + 1; *p && strcmp(p, ".lua") != 0; p++)
    if (*p == '.')
      *p = '/';
  char *text = read_text_file(path, len, err, errlen);
  *missing = !text && errno == ENOENT;
  return text;
}

typedef int (*native_opener)(lua_State *L);
static const struct {
  const char *name;
  native_opener open;
} natives[] = {{"json", luaopen_th_json},   {"store", luaopen_th_store}, {"uuid", luaopen_th_uuid},
               {"clock", luaopen_th_clock}, {"log", luaopen_th_log}};

/* require(name): native modules, then text scripts from the routes folder. */
static int sandbox_require(lua_State *L) {
  th_host *h = host_of(L);
  size_t name_len;
  const char *name = luaL_checklstring(L, 1, &name_len);
  if (strlen(name) != name_len)
    return luaL_error(L, "module name must not contain NUL");
  lua_settop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, 2, name);
  if (lua_toboolean(L, -1))
    return 1;
  lua_pop(L, 1);
  for (size_t i = 0; i < TH_ARRAY_LEN(natives); i++) {
    if (strcmp(name, natives[i].name) == 0) {
      lua_pushlightuserdata(L, &h->binding);
      lua_pushcclosure(L, natives[i].open, 1);
      lua_call(L, 0, 1);
      lua_pushvalue(L, -1);
      lua_setfield(L, 2, name);
      return 1;
    }
  }
  if (!valid_module_name(name))
    return luaL_error(L, "module name '%s' is not allowed", name);
  char path[4096], why[4200];
  size_t len = 0;
  int missing = 0;
  char *text = read_script(h->cfg->routes_dir, name, path, sizeof path, &len, &missing, why,
                           sizeof why);
  if (!text && missing && h->extra_dir)
    text = read_script(h->extra_dir, name, path, sizeof path, &len, &missing, why, sizeof why);
  if (!text && missing)
    return luaL_error(L, "module '%s' not found in %s", name, h->cfg->routes_dir);
  if (!text)
    return luaL_error(L, "module '%s': %s", name, why);
  lua_pushfstring(L, "@%s", path);
  int status = luaL_loadbufferx(L, text, len, lua_tostring(L, -1), "t");
  free(text);
  if (status != LUA_OK)
    return lua_error(L);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, 2, name);
  return 1;
}

static const char *const removed_globals[] = {"dofile", "loadfile", "load", "collectgarbage",
                                              "require", "module", "setfenv", "getfenv",
                                              "loadstring", NULL};

/* Opens the allowed libraries and installs require/print; runs protected. */
static int setup_sandbox(lua_State *L) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                  {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8}};
  for (size_t i = 0; i < TH_ARRAY_LEN(libs); i++) {
    luaL_requiref(L, libs[i].name, libs[i].func, 1);
    lua_pop(L, 1);
  }
  for (int i = 0; removed_globals[i]; i++) {
    lua_pushnil(L);
    lua_setglobal(L, removed_globals[i]);
  }
  lua_getglobal(L, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  /* Hide the shared string metatable from getmetatable/setmetatable. */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushliteral(L, "protected");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  th_json_setup(L);
  lua_getglobal(L, "setmetatable");
  lua_setfield(L, LUA_REGISTRYINDEX, "th.setmetatable");
  lua_register(L, "setmetatable", sandbox_setmetatable);
  lua_register(L, "xpcall", sandbox_xpcall);
  lua_register(L, "require", sandbox_require);
  lua_register(L, "print", sandbox_print);
  th_lua_set_request_id(L, "init");
  return 0;
}

/* Loads routes.lua and checks it returns a table with handle(); protected. */
static int load_routes(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "routes");
  lua_call(L, 1, 1);
  if (lua_type(L, -1) != LUA_TTABLE)
    return luaL_error(L, "routes.lua must return a table with a handle(request) function");
  lua_getfield(L, -1, "handle");
  if (lua_type(L, -1) != LUA_TFUNCTION)
    return luaL_error(L, "routes.lua must return a table with a handle(request) function");
  lua_setfield(L, LUA_REGISTRYINDEX, "th.handle");
  return 0;
}

/* Fingerprint of the *.lua files (names, sizes, mtimes) in dir and below. */
static unsigned long long scripts_fingerprint(const char *dir, int depth) {
  unsigned long long sig = 1469598103934665603ULL;
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) != 0)
      continue;
    unsigned long long part = 0;
    if (S_ISDIR(st.st_mode) && depth < 4) {
      part = scripts_fingerprint(path, depth + 1);
    } else {
      size_t n = strlen(e->d_name);
      if (n < 4 || strcmp(e->d_name + n - 4, ".lua") != 0)
        continue;
      part = (unsigned long long)st.st_mtim.tv_sec * 1000000007ULL +
             (unsigned long long)st.st_mtim.tv_nsec + (unsigned long long)st.st_size * 31ULL +
             (unsigned long long)st.st_ino;
    }
    for (const char *p = e->d_name; *p; p++)
      part = (part ^ (unsigned char)*p) * 1099511628211ULL;
    sig ^= part; /* order-independent: readdir order varies */
  }
  closedir(d);
  return sig;
}

/* Builds a fresh state with the scripts loaded; NULL with err on failure. */
static lua_State *build_state(th_host *h, char *err, size_t errlen) {
  h->mem_used = 0; /* counts this state only; the caller accounts for others */
  h->mem_failed = 0;
  lua_State *L = lua_newstate(capped_alloc, h);
  if (!L) {
    snprintf(err, errlen, "cannot create the Lua state: out of memory");
    return NULL;
  }
  lua_pushcfunction(L, setup_sandbox);
  int status = lua_pcall(L, 0, 0, 0);
  if (status == LUA_OK) {
    lua_pushcfunction(L, load_routes);
    status = lua_pcall(L, 0, 0, 0);
  }
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    snprintf(err, errlen, "cannot load the route scripts: %s", msg ? msg : "unknown error");
    lua_close(L);
    return NULL;
  }
  /* Generational: what a request allocates dies young; the scripts and
   * modules, loaded once, are not traversed again at every cycle. Minor
   * multiplier 50 (Lua's default 20): a minor collection once the heap has
   * grown by half, not by a fifth, so that a request (a create allocates a
   * few tens of KB) does not pay one or two minor cycles of fixed cost
   * (roots, string cache, sweeps); bench/hotpath.md "Second wave": about
   * -20 K instructions per create, -30 K per list page, same per get. The
   * major multiplier stays Lua's (100). */
  lua_gc(L, LUA_GCGEN, 50, 0);
  return L;
}

th_result th_host_new(const th_config *cfg, th_store *store, th_host **out, char *err,
                      size_t errlen) {
  th_host *h = calloc(1, sizeof *h);
  if (!h) {
    snprintf(err, errlen, "out of memory");
    return TH_ERR_NOMEM;
  }
  h->cfg = cfg;
  h->binding.store = store;
  h->binding.cursor_secret = (const unsigned char *)cfg->cursor_secret;
  h->binding.cursor_secret_len = strlen(cfg->cursor_secret);
  h->mem_limit = cfg->lua_memory_bytes;
  h->scripts_sig = scripts_fingerprint(cfg->routes_dir, 0);
  h->auth = th_auth_new(cfg, NULL);
  if (!h->auth) {
    free(h);
    snprintf(err, errlen, "out of memory");
    return TH_ERR_NOMEM;
  }
  h->L = build_state(h, err, errlen);
  if (!h->L) {
    th_auth_free(h->auth);
    free(h);
    return TH_ERR_INVALID;
  }
  *out = h;
  return TH_OK;
}

th_result th_host_verify_tokens(th_host *h, th_jwks_cache *keys) {
  th_auth *a = th_auth_new(h->cfg, keys);
  if (!a)
    return TH_ERR_NOMEM;
  th_auth_free(h->auth);
  h->auth = a;
  return TH_OK;
}

th_result th_host_reload_if_changed(th_host *h, char *err, size_t errlen) {
  unsigned long long sig = scripts_fingerprint(h->cfg->routes_dir, 0);
  if (sig == h->scripts_sig && h->L)
    return TH_OK;
  if (sig == h->bad_sig && h->L)
    return TH_OK; /* already reported; the old scripts stay in service */
  /* Both states allocate through h while the new one loads: the counter
   * holds their sum until the old one is closed (which subtracts its part). */
  size_t old_used = h->mem_used;
  lua_State *L = build_state(h, err, errlen);
  if (!L) {
    h->mem_used = old_used;
    h->bad_sig = sig;
    return TH_ERR_INVALID;
  }
  h->mem_used += old_used;
  if (h->L)
    lua_close(h->L);
  h->L = L;
  h->scripts_sig = sig;
  h->bad_sig = 0;
  th_log(TH_LOG_INFO, NULL, "route scripts reloaded", NULL, 0);
  return TH_OK;
}

void th_host_free(th_host *h) {
  if (!h)
    return;
  if (h->L)
    lua_close(h->L);
  th_auth_free(h->auth);
  free(h->extra_dir);
  free(h);
}

/* ---- the pipeline ---- */

/* A string of the client's kept for the request's log record: at most
 * sizeof text bytes, cut on a character boundary (utf8.h); len is what was
 * kept, full the whole length (more than len when it was cut). */
typedef struct excerpt {
  char text[256];
  size_t len, full;
} excerpt;

typedef struct invocation {
  th_host *h;
  const char *event;
  size_t event_len;
  const th_invoke_ctx *ctx;
  const char *request_id;
  /* outputs */
  int not_event;
  char *err;
  size_t errlen;
  th_event_version version;
  int status;
  excerpt method;
  excerpt path;
  th_auth_outcome auth;
  th_invoke_ctx bound; /* *ctx with the owner auth resolved; ctx points here then */
  th_store_stats stats; /* the request's store operations (store.h) */
  char operation[64];   /* request.operation as the route left it, or "" */
  int keyed;            /* an Idempotency-Key claim is held: idem */
  th_store_idem idem;   /* its pending create is freed by th_host_invoke */
} invocation;

/* Pushes {status=, headers={...}, body=json} for an error message. */
static void push_error_response(lua_State *L, int status, const char *message) {
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  lua_newtable(L);
  lua_setfield(L, -2, "headers");
  lua_createtable(L, 0, 1);
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  lua_setfield(L, -2, "body");
}

/* The 401 of RFC 6750: an error code only when a token was sent. */
static void push_unauthorized(lua_State *L, int token_sent) {
  push_error_response(L, 401, "Unauthorized");
  lua_getfield(L, -1, "headers");
  lua_pushstring(L, token_sent ? "Bearer error=\"invalid_token\"" : "Bearer");
  lua_setfield(L, -2, "WWW-Authenticate");
  lua_pop(L, 1);
}

static int header_present(lua_State *L, int headers, const char *name) {
  lua_pushnil(L);
  while (lua_next(L, headers)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING && strcasecmp(lua_tostring(L, -1), name) == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

static void set_default_header(lua_State *L, int headers, const char *name, const char *value) {
  if (!header_present(L, headers, name)) {
    lua_pushstring(L, value);
    lua_setfield(L, headers, name);
  }
}

/* Pushes t[key] without metamethods: a response table's __index runs
 * after the route's budget is disarmed, so it must not run at all. */
static void raw_field(lua_State *L, int t, const char *key) {
  lua_pushstring(L, key);
  lua_rawget(L, t);
}

/* Checks the route's response at idx and pushes the normalised one:
 * {status=int, headers={string=string}, body=string}. Raises a plain-string
 * error naming the problem when the response is malformed. */
static void push_normalised_response(lua_State *L, th_host *h, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "route returned a %s, not a response table", luaL_typename(L, idx));
  lua_createtable(L, 0, 3);
  int out = lua_gettop(L);
  raw_field(L, idx, "status");
  /* A number only (not "200"); a float must be whole (200.0, not 200.5). */
  int64_t status = 0;
  if (lua_isinteger(L, -1))
    status = lua_tointeger(L, -1);
  else if (lua_type(L, -1) == LUA_TNUMBER && !th_double_to_int64(lua_tonumber(L, -1), &status))
    status = 0;
  if (status < 100 || status > 599)
    luaL_error(L, "route returned an invalid status");
  lua_pushinteger(L, (lua_Integer)status);
  lua_setfield(L, out, "status");
  lua_pop(L, 1);
  lua_newtable(L);
  int headers = lua_gettop(L);
  raw_field(L, idx, "headers");
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) != LUA_TSTRING ||
          (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
        luaL_error(L, "route returned a header that is not a string");
      const char *v = lua_tostring(L, -1);
      if (strpbrk(v, "\r\n") || strpbrk(lua_tostring(L, -2), "\r\n: "))
        luaL_error(L, "route returned a header with a line break");
      lua_pushvalue(L, -2);
      lua_pushstring(L, v);
      lua_rawset(L, headers);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "route returned headers that are not a table");
  }
  lua_pop(L, 1);
  raw_field(L, idx, "body");
  int body_type = lua_type(L, -1);
  if (body_type == LUA_TTABLE || body_type == LUA_TLIGHTUSERDATA) {
    th_json_encode(L, -1);
    lua_remove(L, -2);
    set_default_header(L, headers, "Content-Type", "application/json");
  } else if (body_type == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushliteral(L, "");
  } else if (body_type == LUA_TSTRING && lua_rawlen(L, -1) > 0) {
    set_default_header(L, headers, "Content-Type", "text/plain; charset=utf-8");
  } else {
    if (body_type != LUA_TSTRING)
      luaL_error(L, "route returned a body that is a %s", luaL_typename(L, -1));
  }
  lua_setfield(L, out, "body");
  /* Every response, including our own errors: CORS and no sniffing. */
  set_default_header(L, headers, "Access-Control-Allow-Origin", h->cfg->cors_origin);
  set_default_header(L, headers, "Access-Control-Allow-Headers",
                     "Content-Type, Authorization, X-Amz-Date, X-Api-Key, X-Amz-Security-Token, "
                     "If-Match, If-None-Match, Idempotency-Key");
  set_default_header(L, headers, "Access-Control-Allow-Methods",
                     "GET, POST, PUT, DELETE, OPTIONS");
  /* Response headers a browser's script may read besides the simple ones: the new task's URL,
   * the validator, why a 401 happened (RFC 6750) and when to retry a 503. API Gateway's
   * cors_configuration.expose_headers in terraform/main.tf must list the same
   * (tests/terraform/check.js compares the two). */
  set_default_header(L, headers, "Access-Control-Expose-Headers",
                     "Location, ETag, WWW-Authenticate, Retry-After");
  if (strcmp(h->cfg->cors_origin, "*") != 0)
    set_default_header(L, headers, "Vary", "Origin");
  lua_pushliteral(L, "nosniff");
  lua_setfield(L, headers, "X-Content-Type-Options");
  lua_setfield(L, out, "headers");
  lua_remove(L, idx);
}

static void copy_field(lua_State *L, int t, const char *key, excerpt *dst) {
  lua_getfield(L, t, key);
  size_t n = 0;
  const char *s = lua_tolstring(L, -1, &n);
  dst->full = n;
  dst->len = th_utf8_cut(s ? s : "", n, sizeof dst->text);
  if (dst->len)
    memcpy(dst->text, s, dst->len);
  lua_pop(L, 1);
}

/* Normalises the response at index 2 (index 1: the host); protected. */
static int normalise_protected(lua_State *L) {
  push_normalised_response(L, lua_touserdata(L, 1), 2);
  return 1;
}

/* Binds the store to the request's owner for the route (store.h). An owner
 * the store cannot hold leaves it unbound: every store operation then fails
 * (500), never reaching another owner's items. "" is that on purpose — a
 * CORS preflight under auth (auth.h) belongs to nobody — and is not logged. */
static void bind_owner(th_host *h, const char *owner, const char *request_id) {
  if (th_store_set_owner(h->binding.store, owner) != TH_OK && !(owner && !*owner)) {
    th_log_field f[] = {TH_LOG_NUM("ownerBytes", owner ? strlen(owner) : 0)};
    th_log(TH_LOG_ERROR, request_id, "owner is empty or longer than the store allows", f, 1);
  }
}

/* request.operation (raw: no script code runs), the route's name for the
 * request in the metrics; left "" when it is not a string that fits. */
static void copy_operation(lua_State *L, int req, char *out, size_t n) {
  lua_pushliteral(L, "operation");
  lua_rawget(L, req);
  size_t len = 0;
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
  if (s && len < n)
    memcpy(out, s, len + 1);
  lua_pop(L, 1);
}

/* Calls routes.handle(request) under the budget and pushes its response, or a
 * 500 response after logging why the route failed. */
static void push_route_response(lua_State *L, invocation *inv, int req) {
  th_host *h = inv->h;
  lua_pushcfunction(L, traceback_handler);
  int handler = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, "th.handle");
  lua_pushvalue(L, req);
  double deadline = th_now_ms() + h->cfg->lua_timeout_ms;
  if (inv->ctx && inv->ctx->deadline_ms > 0 && inv->ctx->deadline_ms < deadline)
    deadline = inv->ctx->deadline_ms;
  arm_budget(h, deadline);
  double reserve = (deadline - th_now_ms()) / 10;
  if (reserve > STORE_RESERVE_MS)
    reserve = STORE_RESERVE_MS;
  h->binding.store->deadline_ms = deadline - (reserve > 0 ? reserve : 0);
  h->binding.store->stats = &inv->stats;
  bind_owner(h, inv->ctx ? inv->ctx->owner : NULL, inv->request_id);
  atomic_int *in_route = inv->ctx ? inv->ctx->in_route : NULL;
  if (in_route)
    atomic_store(in_route, 1);
  int status = lua_pcall(L, 1, 1, handler);
  if (in_route)
    atomic_store(in_route, 0);
  disarm_budget(h);
  lua_remove(L, handler);
  copy_operation(L, req, inv->operation, sizeof inv->operation);
  if (status == LUA_OK)
    return;
  h->route_failed = 1;
  const char *kind = h->stopped == STOP_BUDGET     ? "instruction_budget"
                     : h->stopped == STOP_DEADLINE ? "deadline"
                     : status == LUA_ERRMEM        ? "out_of_memory"
                                                   : "script_error";
  const char *msg = lua_tostring(L, -1);
  th_log_field f[] = {TH_LOG_STR("kind", kind), TH_LOG_STR("error", msg ? msg : "?")};
  th_log(TH_LOG_ERROR, inv->request_id, "route failed", f, (int)TH_ARRAY_LEN(f));
  lua_pop(L, 1);
  push_error_response(L, 500, "Internal server error");
}

/* ---- conditional requests and Idempotency-Key around the route (store.h,
 * precond.h). The host applies them, not the route scripts: If-Match is
 * bound to the store as the owner is, so every update or delete the route
 * makes is conditional; a keyed POST's create is deferred by the store
 * module and written here, with the idempotency record, in one transaction,
 * once the route's answer is known. ---- */

static void new_request_id(char out[37]);

/* A request header (lower-case name) as a string of the request's headers
 * table, which keeps it alive while req is on the stack; NULL when absent. */
static const char *req_header(lua_State *L, int req, const char *name) {
  const char *v = NULL;
  if (lua_getfield(L, req, "headers") == LUA_TTABLE) {
    if (lua_getfield(L, -1, name) == LUA_TSTRING)
      v = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return v;
}

static const char *req_string(lua_State *L, int req, const char *name, size_t *len) {
  const char *v = NULL;
  if (lua_getfield(L, req, name) == LUA_TSTRING)
    v = lua_tolstring(L, -1, len);
  lua_pop(L, 1);
  return v;
}

static long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The route's deadline (as push_route_response computes it). */
static double route_deadline(const invocation *inv) {
  double deadline = th_now_ms() + inv->h->cfg->lua_timeout_ms;
  if (inv->ctx && inv->ctx->deadline_ms > 0 && inv->ctx->deadline_ms < deadline)
    deadline = inv->ctx->deadline_ms;
  return deadline;
}

/* A store failure of the guards as the routes answer one (respond.lua). */
static void push_store_failure(lua_State *L, invocation *inv, th_result r, const char *op) {
  th_store *s = inv->h->binding.store;
  th_log_field f[] = {TH_LOG_STR("op", op), TH_LOG_STR("error", th_result_name(r)),
                      TH_LOG_STR("detail", s->error)};
  th_log(TH_LOG_ERROR, inv->request_id, "store operation failed", f, (int)TH_ARRAY_LEN(f));
  if (r == TH_ERR_THROTTLED || r == TH_ERR_UNAVAILABLE || r == TH_ERR_TIMEOUT) {
    push_error_response(L, 503, "Service temporarily unavailable");
    lua_getfield(L, -1, "headers");
    lua_pushliteral(L, "1");
    lua_setfield(L, -2, "Retry-After");
    lua_pop(L, 1);
  } else {
    push_error_response(L, 500, "Internal server error");
  }
}

/* Pushes the stored response of a completed key as the route's answer. */
static void push_replay(lua_State *L, const char *stored) {
  th_json_decode(L, stored, strlen(stored));
}

/* Before the route: If-Match bound to the store (PUT, DELETE), and a POST's
 * Idempotency-Key claimed. Returns 1 when it pushed the answer itself (a
 * malformed header, a replay, a conflict), 0 when the route is to run. */
static int begin_guards(lua_State *L, invocation *inv, int req) {
  th_host *h = inv->h;
  th_store *s = h->binding.store;
  size_t body_len = 0;
  const char *method = req_string(L, req, "method", &body_len);
  const char *path = req_string(L, req, "path", &body_len);
  const char *body = req_string(L, req, "body", &body_len);
  method = method ? method : "";
  s->match = (th_store_match){0};
  s->version = 0;
  s->match_failed = 0;
  if (strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0) {
    const char *im = req_header(L, req, "if-match");
    if (im && th_precond_if_match(im, &s->match) != TH_OK) {
      push_error_response(L, 400, "If-Match must be * or a list of at most 16 entity tags");
      return 1;
    }
  }
  const char *key = strcmp(method, "POST") == 0 ? req_header(L, req, "idempotency-key") : NULL;
  if (!key)
    return 0;
  th_store_idem *c = &inv->idem;
  if (th_idem_parse_key(key, c->key) != TH_OK) {
    push_error_response(L, 400, "Idempotency-Key must be a string of 1 to 255 visible ASCII "
                                "characters (\"...\")");
    return 1;
  }
  if (!s->ops->idem_begin) {
    push_error_response(L, 501, "Idempotency-Key is not supported by this store");
    return 1;
  }
  th_result r = th_idem_fingerprint(method, path ? path : "", body ? body : "",
                                    body ? body_len : 0, c->fingerprint);
  if (r != TH_OK) {
    push_store_failure(L, inv, r, "fingerprint");
    return 1;
  }
  char token[37];
  new_request_id(token);
  snprintf(c->token, sizeof c->token, "%s", token);
  double deadline = route_deadline(inv);
  c->now_ms = wall_ms();
  c->expires_at = c->now_ms / 1000 + h->cfg->idempotency_ttl_s;
  /* A second beyond the deadline: the claim outlives this request by a
   * margin for clocks that differ between instances. */
  c->locked_until_ms = c->now_ms + (long long)(deadline - th_now_ms()) + 1000;
  bind_owner(h, inv->ctx ? inv->ctx->owner : NULL, inv->request_id);
  s->deadline_ms = deadline - STORE_RESERVE_MS;
  th_idem_state state = TH_IDEM_NEW;
  char *stored = NULL;
  /* The claim is a store call of this request (its metrics), as are the
   * commit and the release after the route. */
  s->stats = &inv->stats;
  double t0 = th_store_call_start(s);
  r = s->ops->idem_begin(s, c, &state, &stored);
  th_store_count_call(s, t0);
  if (r != TH_OK) {
    push_store_failure(L, inv, r, "idem_begin");
    return 1;
  }
  switch (state) {
  case TH_IDEM_NEW:
    inv->keyed = 1;
    s->idem = c;
    return 0;
  case TH_IDEM_REPLAY:
    lua_pushstring(L, stored);
    free(stored);
    push_replay(L, lua_tostring(L, -1));
    lua_remove(L, -2);
    return 1;
  case TH_IDEM_MISMATCH:
    push_error_response(L, 422, "Idempotency-Key was already used with a different request");
    return 1;
  case TH_IDEM_IN_FLIGHT:
    push_error_response(L, 409, "A request with this Idempotency-Key is still in progress");
    lua_getfield(L, -1, "headers");
    lua_pushliteral(L, "1");
    lua_setfield(L, -2, "Retry-After");
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

/* Replaces the normalised response on top with another (pushed on top). */
static void replace_response(lua_State *L, th_host *h) {
  push_normalised_response(L, h, -1);
  lua_replace(L, -2);
}

static int response_status(lua_State *L) {
  lua_getfield(L, -1, "status");
  int status = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return status;
}

/* The snapshot of the normalised response on top that a replay gives back:
 * status, body, and the headers that are the request's own (Location, ETag,
 * Content-Type); CORS and the rest are added again at replay. Pushes it as
 * JSON text. */
static void push_snapshot(lua_State *L) {
  static const char *const kept[] = {"Location", "ETag", "Content-Type"};
  int resp = lua_gettop(L);
  lua_createtable(L, 0, 3);
  lua_getfield(L, resp, "status");
  lua_setfield(L, -2, "status");
  lua_getfield(L, resp, "body");
  lua_setfield(L, -2, "body");
  lua_newtable(L);
  lua_getfield(L, resp, "headers");
  for (size_t i = 0; i < TH_ARRAY_LEN(kept); i++) {
    lua_getfield(L, -1, kept[i]);
    lua_setfield(L, -3, kept[i]);
  }
  lua_pop(L, 1);
  lua_setfield(L, -2, "headers");
  th_json_encode(L, -1);
  lua_remove(L, -2);
}

/* After the route, on the normalised response on top: 412 for a failed
 * If-Match, the ETag of the item answered, 304 for a matching
 * If-None-Match, and the keyed create written with its record (or the claim
 * released when the route wrote nothing). */
static void end_guards(lua_State *L, invocation *inv, int req) {
  th_host *h = inv->h;
  th_store *s = h->binding.store;
  size_t n;
  const char *method = req_string(L, req, "method", &n);
  method = method ? method : "";
  s->idem = NULL;
  int status = response_status(L);
  if (s->match_failed && status != 412) {
    push_error_response(L, 412, "Precondition failed");
    replace_response(L, h);
    status = 412;
  }
  char etag[32] = "";
  if ((status == 200 || status == 201) && s->version > 0 &&
      (strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)) {
    lua_getfield(L, -1, "headers");
    if (!header_present(L, lua_gettop(L), "ETag")) {
      th_precond_etag(s->version, etag, sizeof etag);
      lua_pushstring(L, etag);
      lua_setfield(L, -2, "ETag");
    }
    lua_pop(L, 1);
  }
  if (etag[0] && status == 200 && strcmp(method, "GET") == 0) {
    const char *inm = req_header(L, req, "if-none-match");
    if (inm && th_precond_none_match(inm, s->version)) {
      lua_pushinteger(L, 304);
      lua_setfield(L, -2, "status");
      lua_pushliteral(L, "");
      lua_setfield(L, -2, "body");
      lua_getfield(L, -1, "headers");
      lua_pushnil(L);
      lua_setfield(L, -2, "Content-Type");
      lua_pop(L, 1);
    }
  }
  if (!inv->keyed)
    return;
  if (!inv->idem.pending_id || status < 200 || status > 299)
    return; /* nothing written: release_guards drops the claim */
  push_snapshot(L);
  double t0 = th_store_call_start(s);
  th_result r = s->ops->idem_commit(s, &inv->idem, lua_tostring(L, -1));
  th_store_count_call(s, t0);
  lua_pop(L, 1);
  if (r == TH_OK) {
    inv->keyed = 0; /* completed: nothing to release */
    return;
  }
  inv->keyed = r != TH_ERR_PRECONDITION; /* taken over: the claim is not ours to drop */
  if (r == TH_ERR_PRECONDITION) {
    th_log(TH_LOG_WARN, inv->request_id,
           "idempotency claim taken over after its deadline: nothing written", NULL, 0);
    push_error_response(L, 409, "A request with this Idempotency-Key is still in progress");
    lua_getfield(L, -1, "headers");
    lua_pushliteral(L, "1");
    lua_setfield(L, -2, "Retry-After");
    lua_pop(L, 1);
  } else {
    push_store_failure(L, inv, r, "idem_commit");
  }
  replace_response(L, h);
}

/* After every request, whatever happened: drops a claim that wrote nothing
 * (so a corrected retry may use the key), frees the deferred create and
 * unbinds the store from the request. */
static void release_guards(th_host *h, invocation *inv) {
  th_store *s = h->binding.store;
  if (inv->keyed && s->ops->idem_release) {
    double t0 = th_store_call_start(s);
    th_result r = s->ops->idem_release(s, &inv->idem);
    th_store_count_call(s, t0);
    if (r != TH_OK) {
      th_log_field f[] = {TH_LOG_STR("detail", s->error)};
      th_log(TH_LOG_WARN, inv->request_id,
             "cannot release the idempotency claim: it lapses at its deadline", f, 1);
    }
  }
  inv->keyed = 0;
  free(inv->idem.pending_id);
  free(inv->idem.pending_item);
  inv->idem.pending_id = inv->idem.pending_item = NULL;
  s->idem = NULL;
  s->match = (th_store_match){0};
  s->match_failed = 0;
  s->version = 0;
  s->deadline_ms = 0;
  s->owner[0] = '\0';
  s->stats = NULL;
}

/* Runs inside lua_pcall: event → route → normalised response → proxy JSON
 * (left on the stack). */
static int invoke_protected(lua_State *L) {
  invocation *inv = lua_touserdata(L, 1);
  th_host *h = inv->h;
  th_event_info info;
  lua_settop(L, 0);
  th_lua_set_request_id(L, inv->request_id);
  if (th_event_push_request(L, inv->event, inv->event_len, &info, inv->err, inv->errlen) !=
      TH_OK) {
    inv->not_event = 1;
    return 0;
  }
  inv->version = info.version;
  int req = lua_gettop(L);
  copy_field(L, req, "method", &inv->method);
  copy_field(L, req, "path", &inv->path);
  lua_pushstring(L, inv->request_id);
  lua_setfield(L, req, "request_id");
  if (inv->ctx && inv->ctx->function_arn) {
    lua_pushstring(L, inv->ctx->function_arn);
    lua_setfield(L, req, "function_arn");
  }

  th_auth_resolve(h->auth, L, req, &inv->auth);
  if (inv->ctx)
    inv->bound = *inv->ctx;
  if (inv->auth.owner)
    inv->bound.owner = inv->auth.owner;
  inv->ctx = &inv->bound;

  if (inv->auth.verdict == TH_AUTH_DENY)
    push_unauthorized(L, inv->auth.token_sent);
  else if (inv->auth.verdict == TH_AUTH_FAIL)
    push_error_response(L, 500, "Internal server error");
  else if (info.body_invalid)
    push_error_response(L, 400, "Request body is declared base64 but is not valid base64");
  else if (info.body_len > h->cfg->max_body_bytes)
    push_error_response(L, 413, "Request body too large");
  else if (!begin_guards(L, inv, req))
    push_route_response(L, inv, req);

  lua_pushcfunction(L, normalise_protected);
  lua_pushlightuserdata(L, h);
  lua_pushvalue(L, -3);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    th_log_field f[] = {TH_LOG_STR("error", msg ? msg : "?")};
    th_log(TH_LOG_ERROR, inv->request_id, "route returned an invalid response", f, 1);
    lua_pop(L, 1);
    push_error_response(L, 500, "Internal server error");
    push_normalised_response(L, h, -1);
  }
  end_guards(L, inv, req);
  lua_getfield(L, -1, "status");
  inv->status = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  th_event_push_response_json(L, -1, info.version);
  return 1;
}

/* Last resort after a failure of the host's own code (out of memory while
 * building a response): a fresh 500 in the event's format; protected. */
static int fallback_protected(lua_State *L) {
  invocation *inv = lua_touserdata(L, 1);
  push_error_response(L, 500, "Internal server error");
  push_normalised_response(L, inv->h, -1);
  th_event_push_response_json(L, -1, inv->version ? inv->version : TH_EVENT_V2);
  inv->status = 500;
  return 1;
}

static th_result rebuild_state(th_host *h, const char *request_id) {
  char err[512];
  if (h->L)
    lua_close(h->L);
  h->L = build_state(h, err, sizeof err);
  th_log_field f[] = {TH_LOG_STR("error", err)};
  if (!h->L) {
    th_log(TH_LOG_ERROR, request_id, "cannot rebuild the Lua state", f, 1);
    return TH_ERR_INTERNAL;
  }
  /* A memory bomb leaves the heap grown: hand the freed pages back. */
  malloc_trim(0);
  th_log(TH_LOG_INFO, request_id, "Lua state rebuilt after a stopped or failed script", NULL, 0);
  return TH_OK;
}

static void new_request_id(char out[37]) {
  uuid_t u;
  uuid_generate_random(u);
  uuid_unparse_lower(u, out);
}

static th_result copy_top_string(lua_State *L, char **out, size_t *len) {
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  char *copy = s ? malloc(n + 1) : NULL;
  if (!copy)
    return TH_ERR_NOMEM;
  memcpy(copy, s, n + 1);
  *out = copy;
  *len = n;
  return TH_OK;
}

th_result th_host_invoke(th_host *h, const char *event, size_t len, const th_invoke_ctx *ctx,
                         char **response, size_t *response_len, th_invoke_result *res,
                         char *err, size_t errlen) {
  double started = th_now_ms();
  char generated[37];
  const char *rid = ctx ? ctx->request_id : NULL;
  if (!rid) {
    new_request_id(generated);
    rid = generated;
  }
  if (!h->L && rebuild_state(h, rid) != TH_OK) {
    snprintf(err, errlen, "the Lua state is not available");
    return TH_ERR_INTERNAL;
  }
  invocation inv = {.h = h, .event = event, .event_len = len, .ctx = ctx, .request_id = rid,
                    .err = err, .errlen = errlen};
  lua_State *L = h->L;
  lua_settop(L, 0);
  lua_pushcfunction(L, invoke_protected);
  lua_pushlightuserdata(L, &inv);
  int status = lua_pcall(L, 1, 1, 0);
  release_guards(h, &inv);
  th_result rc = TH_OK;
  if (status == LUA_OK && inv.not_event) {
    rc = TH_ERR_INVALID;
  } else if (status == LUA_OK) {
    rc = copy_top_string(L, response, response_len);
  } else {
    const char *msg = lua_tostring(L, -1);
    th_log_field f[] = {TH_LOG_STR("error", msg ? msg : "?")};
    th_log(TH_LOG_ERROR, rid, "host failed while handling the request", f, 1);
    rc = rebuild_state(h, rid);
    if (rc == TH_OK) {
      L = h->L;
      lua_settop(L, 0);
      lua_pushcfunction(L, fallback_protected);
      lua_pushlightuserdata(L, &inv);
      rc = lua_pcall(L, 1, 1, 0) == LUA_OK ? copy_top_string(L, response, response_len)
                                          : TH_ERR_INTERNAL;
    }
    if (rc != TH_OK)
      snprintf(err, errlen, "cannot build a response: %s", th_result_name(rc));
  }
  if (h->L)
    lua_settop(h->L, 0);
  /* A stopped or failed script leaves state we cannot trust (globals half
   * updated, a grown stack, an exhausted heap): start the next request from a
   * fresh state. Failures are rare, and a rebuild costs well under 1 ms. */
  if (h->stopped != STOP_NONE || h->mem_failed || h->route_failed)
    rebuild_state(h, rid);
  if (res) {
    res->status = inv.status;
    snprintf(res->request_id, sizeof res->request_id, "%s", rid);
    memcpy(res->operation, inv.operation, sizeof res->operation);
    res->store = inv.stats;
    res->duration_ms = th_now_ms() - started;
  }
  if (rc == TH_OK) {
    /* A method or path cut for the log says how long it was. */
    th_log_field f[6];
    int n = 0;
    f[n++] = TH_LOG_LSTR("method", inv.method.text, inv.method.len);
    if (inv.method.full > inv.method.len)
      f[n++] = TH_LOG_NUM("methodBytes", inv.method.full);
    f[n++] = TH_LOG_LSTR("path", inv.path.text, inv.path.len);
    if (inv.path.full > inv.path.len)
      f[n++] = TH_LOG_NUM("pathBytes", inv.path.full);
    f[n++] = TH_LOG_NUM("status", inv.status);
    f[n++] = TH_LOG_NUM("durationMs", trunc((th_now_ms() - started) * 1000) / 1000);
    th_log(inv.status >= 500 ? TH_LOG_ERROR : TH_LOG_INFO, rid, "request", f, n);
  }
  return rc;
}

/* ---- --serve ---- */

typedef struct http_call {
  th_host *h;
  const th_http_request *req;
  int status;
  const char *message;
} http_call;

static int build_event_protected(lua_State *L) {
  http_call *c = lua_touserdata(L, 1);
  th_event_push_v2_from_http(L, c->req);
  return 1;
}

static int error_json_protected(lua_State *L) {
  http_call *c = lua_touserdata(L, 1);
  push_error_response(L, c->status, c->message);
  push_normalised_response(L, c->h, -1);
  th_event_push_response_json(L, -1, TH_EVENT_V2);
  return 1;
}

typedef struct read_call {
  const char *json;
  size_t len;
  th_http_response *out;
  th_result rc;
} read_call;

static int read_response_protected(lua_State *L) {
  read_call *c = lua_touserdata(L, 1);
  c->rc = th_event_read_v2_response(L, c->json, c->len, c->out);
  return 0;
}

static th_result read_response(th_host *h, const char *json, size_t len, th_http_response *out) {
  read_call rc = {json, len, out, TH_ERR_INTERNAL};
  lua_pushcfunction(h->L, read_response_protected);
  lua_pushlightuserdata(h->L, &rc);
  if (lua_pcall(h->L, 1, 0, 0) != LUA_OK) {
    lua_settop(h->L, 0);
    return TH_ERR_NOMEM;
  }
  return rc.rc;
}

th_result th_host_invoke_http(th_host *h, const th_http_request *req, th_http_response *out,
                              th_invoke_result *res, char *err, size_t errlen) {
  if (!h->L && rebuild_state(h, req->request_id) != TH_OK) {
    snprintf(err, errlen, "the Lua state is not available");
    return TH_ERR_INTERNAL;
  }
  http_call c = {.h = h, .req = req};
  lua_settop(h->L, 0);
  lua_pushcfunction(h->L, build_event_protected);
  lua_pushlightuserdata(h->L, &c);
  if (lua_pcall(h->L, 1, 1, 0) != LUA_OK) {
    lua_settop(h->L, 0);
    snprintf(err, errlen, "cannot build the event: out of memory");
    return TH_ERR_NOMEM;
  }
  char *event = NULL, *response = NULL;
  size_t event_len = 0, response_len = 0;
  th_result rc = copy_top_string(h->L, &event, &event_len);
  lua_settop(h->L, 0);
  if (rc != TH_OK)
    return rc;
  th_invoke_ctx ctx = {.request_id = req->request_id, .owner = req->owner};
  rc = th_host_invoke(h, event, event_len, &ctx, &response, &response_len, res, err, errlen);
  free(event);
  if (rc != TH_OK)
    return rc;
  rc = read_response(h, response, response_len, out);
  free(response);
  if (rc != TH_OK)
    snprintf(err, errlen, "cannot read the proxy response: %s", th_result_name(rc));
  return rc;
}

th_result th_host_error_json(th_host *h, int status, const char *message, char **json,
                             size_t *len) {
  if (!h->L && rebuild_state(h, NULL) != TH_OK)
    return TH_ERR_INTERNAL;
  http_call c = {.h = h, .status = status, .message = message};
  lua_settop(h->L, 0);
  lua_pushcfunction(h->L, error_json_protected);
  lua_pushlightuserdata(h->L, &c);
  if (lua_pcall(h->L, 1, 1, 0) != LUA_OK) {
    lua_settop(h->L, 0);
    return TH_ERR_NOMEM;
  }
  th_result rc = copy_top_string(h->L, json, len);
  lua_settop(h->L, 0);
  return rc;
}

th_result th_host_error_http(th_host *h, int status, const char *message, th_http_response *out) {
  char *json = NULL;
  size_t len = 0;
  th_result rc = th_host_error_json(h, status, message, &json, &len);
  if (rc == TH_OK) {
    rc = read_response(h, json, len, out);
    free(json);
  }
  return rc;
}

/* ---- --lua-test ---- */

th_result th_host_run_script(th_host *h, const char *path, char *err, size_t errlen) {
  char *slash = strrchr(path, '/');
  free(h->extra_dir);
  h->extra_dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
  h->print_to_stdout = 1;
  size_t n = 0;
  char *text = read_text_file(path, &n, err, errlen);
  if (!text)
    return TH_ERR_IO;
  lua_State *L = h->L;
  lua_settop(L, 0);
  th_lua_set_request_id(L, "test");
  lua_pushcfunction(L, traceback_handler);
  char chunk[4200];
  snprintf(chunk, sizeof chunk, "@%s", path);
  int status = luaL_loadbufferx(L, text, n, chunk, "t");
  free(text);
  bind_owner(h, NULL, "test"); /* a test script's store calls: auth off */
  if (status == LUA_OK)
    status = lua_pcall(L, 0, 0, 1);
  h->binding.store->owner[0] = '\0';
  if (status != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_settop(L, 0);
    return TH_ERR_INVALID;
  }
  lua_settop(L, 0);
  return TH_OK;
}
