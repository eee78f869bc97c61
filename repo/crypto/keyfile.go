package crypto

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/argon2"
)

// ErrWrongPassword is returned when no key file opens with the password.
var ErrWrongPassword = errors.New("wrong password or no key found for it")

// KDFParams are the argon2id parameters stored in each key file, so they can
// be raised later without breaking old key files.
type KDFParams struct {
	Algorithm string `json:"algorithm"` // "argon2id"
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"`
}

// DefaultKDF costs about a quarter of a second and 64 MiB on this class of
// machine: slow enough to make guessing expensive, quick enough that every
// command can afford it once.
var DefaultKDF = KDFParams{Algorithm: "argon2id", Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// TestKDF is cheap, for tests only.
var TestKDF = KDFParams{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

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

func deriveKey(password []byte, p KDFParams) (*MasterKey, error) {
	if p.Algorithm != "argon2id" {
		return nil, fmt.Errorf("unsupported key derivation %q", p.Algorithm)
	}
	if p.Time == 0 || p.MemoryKiB == 0 || p.Threads == 0 || len(p.Salt) < 16 {
		return nil, fmt.Errorf("invalid key derivation parameters")
	}
	dk := argon2.IDKey(password, p.Salt, p.Time, p.MemoryKiB, p.Threads, 32)
	k := &MasterKey{}
	copy(k.Encrypt[:], dk)
	return k, k.init()
}

// SealKey seals mk under password with fresh salt and the given parameters.
func SealKey(mk *MasterKey, password []byte, p KDFParams, host, user string) (*KeyFile, error) {
	p.Salt = make([]byte, 32)
	if _, err := rand.Read(p.Salt); err != nil {
		return nil, err
	}
	wrap, err := deriveKey(password, p)
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

// OpenKey unseals the master key from kf with password.
func OpenKey(kf *KeyFile, password []byte) (*MasterKey, error) {
	wrap, err := deriveKey(password, kf.KDF)
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
