/* libFuzzer target: pagination cursors (th_cursor_open / th_cursor_seal).
 *
 * The input, as a C string (cut at the first NUL, as the store module passes
 * the `next` query parameter), is opened under a fixed secret, identity and
 * owner. Properties checked:
 *   - a cursor that opens re-seals to exactly the same text (no two texts
 *     open to the same key: the decoding is canonical);
 *   - it does not open under another identity (another table), owner or
 *     secret;
 *   - any key (the input itself, up to TH_CURSOR_MAX_KEY bytes, no NUL)
 *     sealed and opened again gives the same key back, and a sealed cursor
 *     with one character changed, dropped or added no longer opens.
 * The seeds (corpus/cursor) hold real cursors, so the mutator starts from
 * valid MACs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"

static const unsigned char SECRET[] = "taskhost-fuzz-secret";
static const unsigned char OTHER_SECRET[] = "another-secret";
#define IDENTITY "sqlite:/tmp/fuzz/a.db"
#define OTHER_IDENTITY "sqlite:/tmp/fuzz/b.db"
#define OWNER "public"
#define OTHER_OWNER "other"

static void fail(const char *what, const char *text) {
  fprintf(stderr, "fuzz_cursor: %s [%s]\n", what, text ? text : "");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  char *key = NULL;
  if (th_cursor_open(SECRET, sizeof SECRET - 1, IDENTITY, OWNER, text, &key) == TH_OK) {
    if (!key)
      fail("open: TH_OK without a key", text);
    char *again = NULL;
    if (th_cursor_seal(SECRET, sizeof SECRET - 1, IDENTITY, OWNER, key, &again) != TH_OK)
      fail("an opened key does not seal again", text);
    if (strcmp(again, text) != 0)
      fail("two texts open to the same key (decoding not canonical)", text);
    free(again);
    char *k2 = NULL;
    if (th_cursor_open(SECRET, sizeof SECRET - 1, OTHER_IDENTITY, OWNER, text, &k2) == TH_OK)
      fail("a cursor opens under another identity", text);
    if (th_cursor_open(OTHER_SECRET, sizeof OTHER_SECRET - 1, IDENTITY, OWNER, text, &k2) == TH_OK)
      fail("a cursor opens under another secret", text);
    if (th_cursor_open(SECRET, sizeof SECRET - 1, IDENTITY, OTHER_OWNER, text, &k2) == TH_OK)
      fail("a cursor opens for another owner", text);
    free(key);
    key = NULL;
  }

  /* the input as a key: seal, open, compare; then tamper */
  size_t klen = strlen(text);
  if (klen <= TH_CURSOR_MAX_KEY) {
    char *sealed = NULL;
    if (th_cursor_seal(SECRET, sizeof SECRET - 1, IDENTITY, OWNER, text, &sealed) != TH_OK)
      fail("seal refused a valid key", text);
    if (th_cursor_open(SECRET, sizeof SECRET - 1, IDENTITY, OWNER, sealed, &key) != TH_OK)
      fail("a sealed cursor does not open", sealed);
    if (strcmp(key, text) != 0)
      fail("the key changed through seal/open", text);
    free(key);
    key = NULL;
    size_t n = strlen(sealed);
    if (n > 0 && size > 0) {
      size_t pos = data[0] % n;
      char *t = malloc(n + 2);
      /* one character changed */
      memcpy(t, sealed, n + 1);
      t[pos] = t[pos] == 'A' ? 'B' : 'A';
      if (th_cursor_open(SECRET, sizeof SECRET - 1, IDENTITY, OWNER, t, &key) == TH_OK)
        fail("a changed cursor opens", t);
      /* one character dropped */
      memcpy(t, sealed, pos);
      memcpy(t + pos, sealed + pos + 1, n - pos);
      if (th_cursor_open(SECRET, sizeof SECRET - 1, IDENTITY, OWNER, t, &key) == TH_OK)
        fail("a shortened cursor opens", t);
      /* one character added */
      memcpy(t, sealed, pos);
      t[pos] = 'Q';
      memcpy(t + pos + 1, sealed + pos, n - pos + 1);
      if (th_cursor_open(SECRET, sizeof SECRET - 1, IDENTITY, OWNER, t, &key) == TH_OK)
        fail("a lengthened cursor opens", t);
      free(t);
    }
    free(sealed);
  } else {
    char *sealed = NULL;
    if (th_cursor_seal(SECRET, sizeof SECRET - 1, IDENTITY, OWNER, text, &sealed) == TH_OK)
      fail("seal took a key over TH_CURSOR_MAX_KEY", text);
  }
  free(text);
  return 0;
}
