/* test_mock_flatfiles.c - the simulator's signature check rests on SHA-256
 * and HMAC-SHA256: the FIPS 180-2 and RFC 4231 test vectors, and the block
 * boundaries (55, 56, 64 bytes) where the padding changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/sim/mock_flatfiles.h"
#include "test.h"

static const char *hexof(const unsigned char d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    return out;
}

static void test_sha256_vectors(void)
{
    unsigned char d[32];
    char h[65];
    mock_sha256("abc", 3, d);
    CHECK_STR(hexof(d, h), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    mock_sha256("", 0, d);
    CHECK_STR(hexof(d, h), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes */
    mock_sha256(two_blocks, sizeof two_blocks - 1, d);
    CHECK_STR(hexof(d, h), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    mock_sha256(a, 1000000, d);
    CHECK_STR(hexof(d, h), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

static void test_hmac_vectors(void)
{
    unsigned char key[20], d[32];
    char h[65];
    memset(key, 0x0b, sizeof key); /* RFC 4231 test case 1 */
    mock_hmac_sha256(key, sizeof key, "Hi There", 8, d);
    CHECK_STR(hexof(d, h), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    mock_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d); /* test case 2 */
    CHECK_STR(hexof(d, h), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    unsigned char long_key[131]; /* test case 6: a key longer than the block is hashed first */
    memset(long_key, 0xaa, sizeof long_key);
    static const char msg[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    mock_hmac_sha256(long_key, sizeof long_key, msg, sizeof msg - 1, d);
    CHECK_STR(hexof(d, h), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

int main(void)
{
    RUN(test_sha256_vectors);
    RUN(test_hmac_vectors);
    TEST_EXIT();
}
