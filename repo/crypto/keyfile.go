package crypto

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/argon2"
)

// ErrWrongPassword is returned when no key file opens with the password.
var ErrWrongPassword = errors.New("wrong password or no key found for it")

// ErrBadKDF marks key derivation parameters this build refuses to run:
// outside the bounds below, or not argon2id.
var ErrBadKDF = errors.New("key derivation parameters out of bounds")

// KDFParams are the argon2id parameters stored in each key file, so they can
// be raised later without breaking old key files.
type KDFParams struct {
	Algorithm string `json:"algorithm"` // "argon2id"
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"`
}

// Bounds on the parameters a key file may ask for. A key file is plain
// JSON that anyone with write access to the store can plant, and every
// command derives a key for each key file it tries, so unbounded
// parameters would let one object exhaust memory or time on every host.
// The bounds sit well above the defaults (16 times the memory, about ten
// times the work) so a stronger policy still fits, and low enough that the
// worst key file costs 1 GiB and ten default unlocks once. Measured on a
// loaded 2-core test machine: the defaults took 3 s, 4 GiB of memory
// passes 37 s; hence the work bound of 2 GiB.
const (
	// MaxKDFMemoryKiB is 1 GiB.
	MaxKDFMemoryKiB = 1 << 20
	// MaxKDFTime bounds the passes; MaxKDFWorkKiB bounds passes times
	// memory (2 GiB of memory passes against the default's 192 MiB).
	MaxKDFTime    = 64
	MaxKDFWorkKiB = 2 << 20
	// MaxKDFThreads bounds argon2 lanes; each lane is a goroutine.
	MaxKDFThreads = 64
	// MinSaltLen and MaxSaltLen bound the salt; writers use 32 bytes.
	MinSaltLen = 16
	MaxSaltLen = 64
)

// DefaultKDF costs about a quarter of a second and 64 MiB on this class of
// machine: slow enough to make guessing expensive, quick enough that every
// command can afford it once.
var DefaultKDF = KDFParams{Algorithm: "argon2id", Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// TestKDF is cheap, for tests only.
var TestKDF = KDFParams{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

// Check reports whether a key file's parameters are within the bounds
// this build runs.
func (p KDFParams) Check() error {
	switch {
	case p.Algorithm != "argon2id":
		return fmt.Errorf("%w: unsupported algorithm %q", ErrBadKDF, p.Algorithm)
	case p.Time == 0 || p.Time > MaxKDFTime:
		return fmt.Errorf("%w: time %d (allowed 1..%d)", ErrBadKDF, p.Time, MaxKDFTime)
	case p.Threads == 0 || p.Threads > MaxKDFThreads:
		return fmt.Errorf("%w: threads %d (allowed 1..%d)", ErrBadKDF, p.Threads, MaxKDFThreads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxKDFMemoryKiB:
		return fmt.Errorf("%w: memory %d KiB (allowed %d..%d)", ErrBadKDF, p.MemoryKiB, 8*uint32(p.Threads), MaxKDFMemoryKiB)
	case uint64(p.Time)*uint64(p.MemoryKiB) > MaxKDFWorkKiB:
		return fmt.Errorf("%w: time x memory %d KiB (allowed up to %d)", ErrBadKDF, uint64(p.Time)*uint64(p.MemoryKiB), MaxKDFWorkKiB)
	case len(p.Salt) < MinSaltLen || len(p.Salt) > MaxSaltLen:
		return fmt.Errorf("%w: salt of %d bytes (allowed %d..%d)", ErrBadKDF, len(p.Salt), MinSaltLen, MaxSaltLen)
	}
	return nil
}

// KeyFile is the JSON document stored under keys/<id>: the master key
// sealed with a key derived from a password.
type KeyFile struct {
	Created  time.Time `json:"created"`
	Host     string    `json:"host,omitempty"`
	Username string    `json:"username,omitempty"`
	KDF      KDFParams `json:"kdf"`
	Data     []byte    `json:"data"` // Seal(masterKeyJSON) under the derived key
}

// keyAD binds a sealed master key to its purpose.
var keyAD = []byte("dedup.key.v1")

// sealedKeyMax bounds the sealed master key: its JSON is under 300 bytes.
const sealedKeyMax = 4 << 10

// deriveKey runs argon2id, which cannot be interrupted, on its own
// goroutine so that a cancelled ctx returns at once; the abandoned
// derivation finishes in the background within the bounds above.
func deriveKey(ctx context.Context, password []byte, p KDFParams) (*MasterKey, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	dk, err := cancellable(ctx, func() []byte {
		return argon2.IDKey(password, p.Salt, p.Time, p.MemoryKiB, p.Threads, 32)
	})
	if err != nil {
		return nil, err
	}
	k := &MasterKey{}
	copy(k.Encrypt[:], dk)
	return k, k.init()
}

// cancellable runs fn and returns its result, or ctx's error as soon as
// ctx ends, leaving fn to finish unobserved.
func cancellable(ctx context.Context, fn func() []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	done := make(chan []byte, 1)
	go func() { done <- fn() }()
	select {
	case out := <-done:
		return out, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// SealKey seals mk under password with fresh salt and the given parameters.
func SealKey(ctx context.Context, mk *MasterKey, password []byte, p KDFParams, host, user string) (*KeyFile, error) {
	p.Salt = make([]byte, 32)
	if _, err := rand.Read(p.Salt); err != nil {
		return nil, err
	}
	wrap, err := deriveKey(ctx, password, p)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(mk)
	if err != nil {
		return nil, err
	}
	return &KeyFile{
		Created:  time.Now().UTC(),
		Host:     host,
		Username: user,
		KDF:      p,
		Data:     wrap.Seal(nil, plain, keyAD),
	}, nil
}

// OpenKey unseals the master key from kf with password. Parameters out of
// bounds give ErrBadKDF without deriving anything; only an authentication
// failure gives ErrWrongPassword.
func OpenKey(ctx context.Context, kf *KeyFile, password []byte) (*MasterKey, error) {
	if len(kf.Data) < Overhead || len(kf.Data) > sealedKeyMax {
		return nil, fmt.Errorf("sealed master key of %d bytes (want %d..%d)", len(kf.Data), Overhead, sealedKeyMax)
	}
	wrap, err := deriveKey(ctx, password, kf.KDF)
	if err != nil {
		return nil, err
	}
	plain, err := wrap.Open(nil, kf.Data, keyAD)
	if err != nil {
		return nil, ErrWrongPassword
	}
	mk := &MasterKey{}
	if err := json.Unmarshal(plain, mk); err != nil {
		return nil, fmt.Errorf("decode master key: %w", err)
	}
	return mk, mk.init()
}
