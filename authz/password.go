package authz

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/cairn-audit/cairn"
	"golang.org/x/crypto/argon2"
)

// Argon2id parameters (OWASP's password storage recommendation: 19 MiB,
// two passes, one lane). Hashes record their parameters, so raising them
// later keeps old hashes valid.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// MinPasswordLength is the shortest password HashPassword accepts.
const MinPasswordLength = 12

// MaxPasswordLength bounds the work one login attempt can cause.
const MaxPasswordLength = 1024

// HashPassword returns the argon2id hash of password in PHC string form:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded base64).
// EInvalid for a password shorter than MinPasswordLength or longer than
// MaxPasswordLength.
func HashPassword(password string) (string, error) {
	if len(password) < MinPasswordLength || len(password) > MaxPasswordLength {
		return "", cairn.Errorf(cairn.EInvalid, "a password must be %d to %d bytes long", MinPasswordLength, MaxPasswordLength)
	}
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// dummyHash is checked against when there is no user, so that a login for
// an unknown name takes as long as one with a wrong password.
var dummyHash, _ = HashPassword("cairn-dummy-password-never-matches")

// CheckPassword reports whether password matches a hash made by
// HashPassword, in time independent of where they differ. An empty or
// malformed hash matches nothing (but still costs one hash computation).
func CheckPassword(hash, password string) bool {
	ok := true
	if hash == "" || len(password) > MaxPasswordLength {
		hash, ok = dummyHash, false
	}
	var v, m, t, p int
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		hash, ok = dummyHash, false
		parts = strings.Split(hash, "$")
	}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m < 1 || m > 1<<21 || t < 1 || t > 16 || p < 1 || p > 16 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1 && ok
}
