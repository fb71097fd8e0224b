/*
 * nsq_goquote: Go's %q verb (strconv.Quote) for byte strings, as used in upstream's error texts
 * (tcp-protocol.md "Notation"): surrounding double quotes; \" and \\; \a \b \f \n \r \t \v;
 * printable Unicode runes (categories L, M, N, P, S and U+0020, Unicode 15.0) kept as they are;
 * invalid UTF-8 bytes and the other control bytes as \xNN; other non-printable runes as \uXXXX or
 * \UXXXXXXXX.
 *
 * Also exports the UTF-8 decoder with Go's rules (utf8.DecodeRune), which nsq_json shares.
 */
#ifndef NSQ_GOQUOTE_H
#define NSQ_GOQUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* Appends the Go-quoted form of s (with the surrounding double quotes) to out. Returns 0 or
   -ENOMEM. */
int nsq_goquote(struct evbuffer *out, const char *s, size_t len);

/* The same as a malloc'd NUL-terminated string (caller frees), or NULL on allocation failure. */
char *nsq_goquote_dup(const char *s, size_t len);

/* Go's strconv.IsPrint for a rune. */
bool nsq_rune_is_print(uint32_t r);

/* Decodes the rune at the head of s (len > 0) as Go's utf8.DecodeRune does: returns the number of
   bytes used (1..4) and stores the rune; an invalid or truncated sequence returns 1 and stores
   NSQ_RUNE_ERROR. */
#define NSQ_RUNE_ERROR 0xFFFDu
size_t nsq_utf8_decode(const uint8_t *s, size_t len, uint32_t *rune);

#endif
