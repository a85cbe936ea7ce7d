/* json_tree.c - one pass from an API body's bytes to a cJSON tree. */
#include "optsnap/api/json_tree.h"

#include "optsnap/util/array.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NESTING_LIMIT 1000 /* cJSON's CJSON_NESTING_LIMIT */

struct reader {
    const unsigned char *p, *end;
    struct json_exact_ints *exact;
    uint64_t numbers; /* number literals read so far (document order) */
    int depth;
    enum json_tree_error error;
};

static bool fail(struct reader *r, enum json_tree_error e)
{
    if (r->error == JSON_TREE_OK)
        r->error = e;
    return false;
}

static cJSON *node_new(struct reader *r, int type)
{
    cJSON *n = cJSON_malloc(sizeof *n);
    if (n == NULL) {
        fail(r, JSON_TREE_NOMEM);
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->type = type;
    return n;
}

/* cJSON's whitespace: every byte up to 0x20 (a NUL is left for the caller to refuse). */
static void skip_ws(struct reader *r)
{
    while (r->p < r->end && *r->p <= 0x20 && *r->p != 0)
        r->p++;
}

size_t json_utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return c != 0;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A \u escape at p (before the closing quote at q) into out; returns the
 * escape's length (6, or 12 for a surrogate pair) and *w the bytes written,
 * or 0 (cJSON's rules: no lone low surrogate, a high one followed by a low). */
static size_t unicode_escape(const unsigned char *p, const unsigned char *q, unsigned char *out, size_t *w)
{
    if (q - p < 6)
        return 0;
    int first = hex4(p + 2);
    if (first < 0 || (first >= 0xDC00 && first <= 0xDFFF))
        return 0;
    unsigned long cp = (unsigned long)first;
    size_t used = 6;
    if (first >= 0xD800 && first <= 0xDBFF) {
        if (q - (p + 6) < 6 || p[6] != '\\' || p[7] != 'u')
            return 0;
        int second = hex4(p + 8);
        if (second < 0xDC00 || second > 0xDFFF)
            return 0;
        cp = 0x10000 + ((((unsigned long)first & 0x3FF) << 10) | ((unsigned long)second & 0x3FF));
        used = 12;
    }
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        *w = 1;
    } else if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        *w = 2;
    } else if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        *w = 3;
    } else {
        out[0] = (unsigned char)(0xF0 | (cp >> 18));
        out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (unsigned char)(0x80 | (cp & 0x3F));
        *w = 4;
    }
    return used;
}

/* The string at r->p (its opening quote) into a cJSON_malloc'd C string. */
static char *read_string(struct reader *r)
{
    const unsigned char *s = r->p + 1, *q = s;
    bool plain = true; /* no escape, nothing to check beyond ASCII */
    while (q < r->end && *q != '"') {
        if (*q == '\\') {
            plain = false;
            if (q + 1 >= r->end) {
                r->p = q;
                fail(r, JSON_TREE_SYNTAX);
                return NULL;
            }
            q++;
        } else if (*q >= 0x80 || *q == 0) {
            plain = false;
        }
        q++;
    }
    if (q >= r->end) {
        r->p = q;
        fail(r, JSON_TREE_SYNTAX);
        return NULL;
    }
    unsigned char *out = cJSON_malloc((size_t)(q - s) + 1);
    if (out == NULL) {
        fail(r, JSON_TREE_NOMEM);
        return NULL;
    }
    size_t o = 0;
    if (plain) {
        memcpy(out, s, (size_t)(q - s));
        o = (size_t)(q - s);
    }
    for (const unsigned char *p = s; !plain && p < q;) {
        if (*p == '\\') {
            size_t used = 2, w = 1;
            switch (p[1]) {
            case 'b': out[o] = '\b'; break;
            case 'f': out[o] = '\f'; break;
            case 'n': out[o] = '\n'; break;
            case 'r': out[o] = '\r'; break;
            case 't': out[o] = '\t'; break;
            case '"':
            case '\\':
            case '/': out[o] = p[1]; break;
            case 'u': used = unicode_escape(p, q, out + o, &w); break;
            default: used = 0;
            }
            if (used == 0) {
                r->p = p;
                cJSON_free(out);
                fail(r, JSON_TREE_SYNTAX);
                return NULL;
            }
            o += w;
            p += used;
            continue;
        }
        size_t k = json_utf8_len(p, (size_t)(q - p));
        if (k == 0) {
            r->p = p;
            cJSON_free(out);
            fail(r, JSON_TREE_UTF8);
            return NULL;
        }
        memcpy(out + o, p, k);
        o += k;
        p += k;
    }
    out[o] = '\0';
    r->p = q + 1;
    return (char *)out;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The number at r->p: the longest prefix strtod takes ([-] digits [. digits]
 * [e [sign] digits], a digit somewhere before the exponent), as cJSON reads
 * it. Its value by one correctly rounded operation, as strtod's: the
 * conversion of the digits when there is no power of ten (up to 19 digits),
 * or one multiplication or division when the digits fit 2^53 and the power
 * of ten is exact (Clinger's fast path); else strtod. */
static bool read_number(struct reader *r, cJSON *n)
{
    const unsigned char *s = r->p, *p = s, *e = r->end;
    bool neg = p < e && *p == '-';
    p += neg;
    uint64_t m = 0;
    int sig = 0, int_digits = 0, frac_digits = 0, exp10 = 0;
    for (; p < e && *p >= '0' && *p <= '9'; p++, int_digits++) {
        if (sig < 19 && (m != 0 || *p != '0')) {
            m = m * 10 + (uint64_t)(*p - '0');
            sig++;
        } else if (m != 0 || *p != '0') {
            sig = 20; /* more digits than a uint64 holds: strtod */
        }
    }
    bool integral = true;
    if (p < e && *p == '.') {
        integral = false;
        for (p++; p < e && *p >= '0' && *p <= '9'; p++, frac_digits++) {
            if (sig < 19 && (m != 0 || *p != '0')) {
                m = m * 10 + (uint64_t)(*p - '0');
                sig++;
                exp10--;
            } else if (m != 0 || *p != '0') {
                sig = 20;
            } else {
                exp10--; /* a leading zero of the fraction */
            }
        }
    }
    if (int_digits + frac_digits == 0) {
        r->p = s;
        return fail(r, JSON_TREE_SYNTAX);
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        const unsigned char *x = p + 1;
        if (x < e && (*x == '+' || *x == '-'))
            x++;
        if (x < e && *x >= '0' && *x <= '9') {
            bool eneg = p[1] == '-';
            int ev = 0;
            for (; x < e && *x >= '0' && *x <= '9'; x++)
                if (ev < 100000)
                    ev = ev * 10 + (*x - '0');
            exp10 += eneg ? -ev : ev;
            integral = false;
            p = x;
        }
    }
    double v;
    if (sig <= 19 && exp10 == 0) {
        v = (double)m; /* one conversion, rounded to nearest: nanosecond timestamps */
    } else if (sig <= 19 && m <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        v = (double)m;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
    } else { /* the body need not end in a NUL: strtod reads a copy */
        size_t k = (size_t)(p - s) - neg;
        char small[64], *copy = k < sizeof small ? small : malloc(k + 1);
        if (copy == NULL)
            return fail(r, JSON_TREE_NOMEM);
        memcpy(copy, s + neg, k);
        copy[k] = '\0';
        v = strtod(copy, NULL); /* the C locale: the process never sets one */
        if (copy != small)
            free(copy);
    }
    n->valuedouble = neg ? -v : v;
    n->type = cJSON_Number;
    if (r->exact == NULL) {
        n->valueint = n->valuedouble >= INT_MAX ? INT_MAX
                      : n->valuedouble <= (double)INT_MIN ? INT_MIN
                                                          : (int)n->valuedouble;
    } else {
        n->valueint = -1;
        if (integral && int_digits >= JSON_EXACT_MIN_DIGITS && int_digits <= 19) {
            uint64_t u = 0;
            for (const unsigned char *d = s + neg; d < p; d++)
                u = u * 10 + (uint64_t)(*d - '0'); /* <= 19 digits: no wrap */
            if (u <= (uint64_t)INT64_MAX) {
                struct json_exact_ints *x = r->exact;
                if (array_reserve((void **)&x->items, &x->cap, x->n + 1, sizeof *x->items) != 0)
                    return fail(r, JSON_TREE_NOMEM);
                x->items[x->n].ordinal = r->numbers;
                x->items[x->n].value = neg ? -(int64_t)u : (int64_t)u;
                n->valueint = (int)x->n++;
            }
        }
    }
    r->numbers++;
    r->p = p;
    return true;
}

static bool read_value(struct reader *r, cJSON *n);

/* Links child after *last under parent (cJSON's chain: the first child's
 * prev is the last one). */
static void append(cJSON *parent, cJSON **last, cJSON *child)
{
    if (*last == NULL) {
        parent->child = child;
    } else {
        (*last)->next = child;
        child->prev = *last;
    }
    *last = child;
    parent->child->prev = child;
}

/* An array or object at r->p; members read into n's children. */
static bool read_container(struct reader *r, cJSON *n, bool object)
{
    if (r->depth >= NESTING_LIMIT)
        return fail(r, JSON_TREE_SYNTAX);
    r->depth++;
    n->type = object ? cJSON_Object : cJSON_Array;
    unsigned char close = object ? '}' : ']';
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return true;
    }
    cJSON *last = NULL;
    for (;;) {
        skip_ws(r);
        cJSON *item = node_new(r, cJSON_Invalid);
        if (item == NULL)
            return false;
        append(n, &last, item); /* owned by n from here: freed with it on failure */
        if (object) {
            if (r->p >= r->end || *r->p != '"')
                return fail(r, r->p < r->end && *r->p == 0 ? JSON_TREE_UTF8 : JSON_TREE_SYNTAX);
            if ((item->string = read_string(r)) == NULL)
                return false;
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':')
                return fail(r, r->p < r->end && *r->p == 0 ? JSON_TREE_UTF8 : JSON_TREE_SYNTAX);
            r->p++;
            skip_ws(r);
        }
        if (!read_value(r, item))
            return false;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            r->depth--;
            return true;
        }
        return fail(r, r->p < r->end && *r->p == 0 ? JSON_TREE_UTF8 : JSON_TREE_SYNTAX);
    }
}

static bool literal(struct reader *r, const char *word, size_t len)
{
    if ((size_t)(r->end - r->p) < len || memcmp(r->p, word, len) != 0)
        return fail(r, JSON_TREE_SYNTAX);
    r->p += len;
    return true;
}

static bool read_value(struct reader *r, cJSON *n)
{
    if (r->p >= r->end)
        return fail(r, JSON_TREE_SYNTAX);
    switch (*r->p) {
    case 'n':
        n->type = cJSON_NULL;
        return literal(r, "null", 4);
    case 'f':
        n->type = cJSON_False;
        return literal(r, "false", 5);
    case 't':
        n->type = cJSON_True;
        n->valueint = 1;
        return literal(r, "true", 4);
    case '"':
        n->type = cJSON_String;
        return (n->valuestring = read_string(r)) != NULL;
    case '[':
        return read_container(r, n, false);
    case '{':
        return read_container(r, n, true);
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return read_number(r, n);
    case 0:
        return fail(r, JSON_TREE_UTF8);
    default:
        return fail(r, *r->p >= 0x80 && json_utf8_len(r->p, (size_t)(r->end - r->p)) == 0 ? JSON_TREE_UTF8
                                                                                      : JSON_TREE_SYNTAX);
    }
}

cJSON *json_tree_parse(const char *text, size_t len, struct json_exact_ints *exact, const char **end,
                       enum json_tree_error *error)
{
    struct reader r = {.p = (const unsigned char *)text, .end = (const unsigned char *)text + len, .exact = exact};
    if (exact != NULL)
        exact->n = 0;
    *end = text;
    *error = JSON_TREE_SYNTAX;
    if (text == NULL || len == 0)
        return NULL;
    if (len >= 5 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) /* cJSON skips it only then */
        r.p += 3;
    skip_ws(&r);
    cJSON *root = node_new(&r, cJSON_Invalid);
    if (root != NULL && !read_value(&r, root)) {
        cJSON_Delete(root);
        root = NULL;
    }
    *end = (const char *)r.p;
    *error = root != NULL ? JSON_TREE_OK : r.error;
    return root;
}
