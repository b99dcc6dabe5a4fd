/*
** limit.c: what the shared rate budget (lua/stackone/limit/) needs of
** C: a digest that names a budget without its API key, the machine's
** clock, process id and a sleep, and a file locked for the host store
** (a locked file, lockfile.c) (core.limit.digest, .now, .pid, .sleep,
** .open).
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stackone.h"

/* ---- SHA-256 (FIPS 180-4) ---- */
static const uint32_t K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
  0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
  0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p) {
  uint32_t w[64], v[8];
  int i;
  for (i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
  for (i = 16; i < 64; i++) {
    uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  memcpy(v, h, sizeof(v));
  for (i = 0; i < 64; i++) {
    uint32_t s1 = ROTR(v[4], 6) ^ ROTR(v[4], 11) ^ ROTR(v[4], 25);
    uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
    uint32_t t1 = v[7] + s1 + ch + K[i] + w[i];
    uint32_t s0 = ROTR(v[0], 2) ^ ROTR(v[0], 13) ^ ROTR(v[0], 22);
    uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
    uint32_t t2 = s0 + maj;
    memmove(v + 1, v, 7 * sizeof(uint32_t));
    v[4] += t1;
    v[0] = t1 + t2;
  }
  for (i = 0; i < 8; i++) h[i] += v[i];
}

static void sha256(const unsigned char *data, size_t len,
                   unsigned char out[32]) {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  unsigned char last[128];
  size_t rest = len % 64, tail, i;
  uint64_t bits = (uint64_t)len * 8;
  for (i = 0; i + 64 <= len; i += 64) sha256_block(h, data + i);
  memset(last, 0, sizeof(last));
  memcpy(last, data + len - rest, rest);
  last[rest] = 0x80;
  tail = rest < 56 ? 64 : 128;
  for (i = 0; i < 8; i++) last[tail - 1 - i] = (unsigned char)(bits >> (8 * i));
  for (i = 0; i < tail; i += 64) sha256_block(h, last + i);
  for (i = 0; i < 32; i++) out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

/* digest(s) -> the SHA-256 of s in hex */
static int limit_digest(lua_State *L) {
  size_t len, i;
  const char *s = luaL_checklstring(L, 1, &len);
  unsigned char d[32];
  char hex[65];
  sha256((const unsigned char *)s, len, d);
  for (i = 0; i < 32; i++) {
    hex[2 * i] = "0123456789abcdef"[d[i] >> 4];
    hex[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
  }
  lua_pushlstring(L, hex, 64);
  return 1;
}

/* now() -> seconds on the monotonic clock, which every process of the
   machine shares */
static int limit_now(lua_State *L) {
  lua_pushnumber(L, so_now());
  return 1;
}

/* sleep(seconds): blocks the thread (the ngx store's wait for its lock,
   in nginx's thread VMs) */
static int limit_sleep(lua_State *L) {
  so_sleep(luaL_checknumber(L, 1));
  return 0;
}

static int limit_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

static int push_errno(lua_State *L, const char *what, const char *path) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s %s: %s", what, path, strerror(errno));
  return 2;
}

/* open(path) -> file | nil, err: created 0600 when missing, locked until
   file:close(), which __gc is too; nothing is inherited by exec */
static int limit_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  so_lockfile *f = so_lockfile_new(L, "budget file");
  f->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (f->fd < 0) return push_errno(L, "cannot open", path);
  if (so_lockfile_lock(f, 1) != 0) return push_errno(L, "cannot lock", path);
  return 1;
}

/* pushes core.limit */
void so_limit_push(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"digest", limit_digest},
    {"now", limit_now},
    {"pid", limit_pid},
    {"sleep", limit_sleep},
    {"open", limit_open},
    {NULL, NULL}
  };
  luaL_newlib(L, funcs);
}
