// Package crypto holds a repository's master key set and the primitives built
// on it: keyed BLAKE3 blob IDs and XChaCha20-Poly1305 sealing.
//
// XChaCha20-Poly1305 is used rather than AES-256-GCM because its 192-bit
// nonces can be drawn at random for every object without a bound on how many
// objects one key may seal; AES-GCM's 96-bit random nonces would cap a
// repository at about 2^32 sealed objects. Both run at several GB/s here,
// far above zstd, so the choice costs no throughput that matters.
package crypto

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/restic/chunker"
	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/dedup-project/dedup/chunk"
)

// Overhead is the number of bytes Seal adds: the nonce and the tag.
const Overhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// ErrAuth means a sealed object failed authentication: it is damaged, or was
// sealed by another key, or is bound to another ID.
var ErrAuth = errors.New("authentication failed (data damaged or wrong key)")

// MasterKey is the secret key set of one repository. It never leaves the
// process unsealed.
type MasterKey struct {
	Encrypt [32]byte    `json:"encrypt"`
	ID      [32]byte    `json:"id"`
	Pol     chunker.Pol `json:"polynomial"`

	aead   cipher.AEAD
	hashes sync.Pool // keyed by ID: blob IDs
	nonces sync.Pool // keyed by a key derived from Encrypt: synthetic nonces
}

// NewMasterKey draws a fresh random key set.
func NewMasterKey() (*MasterKey, error) {
	k := &MasterKey{}
	if _, err := rand.Read(k.Encrypt[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(k.ID[:]); err != nil {
		return nil, err
	}
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return nil, err
	}
	k.Pol = pol
	return k, k.init()
}

func (k *MasterKey) init() error {
	aead, err := chacha20poly1305.NewX(k.Encrypt[:])
	if err != nil {
		return err
	}
	k.aead = aead
	var nonceKey [32]byte
	blake3.DeriveKey("dedup 2026 synthetic nonce v1", k.Encrypt[:], nonceKey[:])
	k.nonces.New = func() any {
		h, _ := blake3.NewKeyed(nonceKey[:])
		return h
	}
	idKey := k.ID
	k.hashes.New = func() any {
		h, err := blake3.NewKeyed(idKey[:])
		if err != nil {
			panic(err) // only fails for a key that is not 32 bytes
		}
		return h
	}
	return nil
}

// Equal reports whether k and o are the same key set, in constant time.
func (k *MasterKey) Equal(o *MasterKey) bool {
	return subtle.ConstantTimeCompare(k.Encrypt[:], o.Encrypt[:]) == 1 &&
		subtle.ConstantTimeCompare(k.ID[:], o.ID[:]) == 1 && k.Pol == o.Pol
}

// BlobID is the keyed BLAKE3-256 of a blob's plaintext. Without the key it
// reveals nothing about the content.
func (k *MasterKey) BlobID(data []byte) chunk.ID {
	h := k.hashes.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write(data)
	var id chunk.ID
	h.Sum(id[:0])
	k.hashes.Put(h)
	return id
}

// Seal appends nonce || ciphertext || tag of plaintext, bound to ad, to dst.
func (k *MasterKey) Seal(dst, plaintext, ad []byte) []byte {
	var nonce [chacha20poly1305.NonceSizeX]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the kernel RNG does not fail
	}
	dst = append(dst, nonce[:]...)
	return k.aead.Seal(dst, nonce[:], plaintext, ad)
}

// SealDeterministic is Seal with a synthetic nonce: a keyed BLAKE3 of the
// associated data and the plaintext (the SIV construction). Equal inputs
// give equal output, which lets two writers that store the same blobs
// produce byte-identical packs that collapse into one object; different
// inputs get independent nonces, so a nonce never repeats with another
// plaintext. It reveals only that two sealed objects are equal, which
// their blob IDs already reveal.
func (k *MasterKey) SealDeterministic(dst, plaintext, ad []byte) []byte {
	nonce := k.syntheticNonce(plaintext, ad)
	dst = append(dst, nonce[:]...)
	return k.aead.Seal(dst, nonce[:], plaintext, ad)
}

// SealDeterministicInPlace seals buf[NonceSize:] where it lies: buf must
// hold NonceSize bytes of room followed by the plaintext, and have
// TagSize bytes of spare capacity. It saves a plaintext-sized copy per
// blob on the backup's hot path.
func (k *MasterKey) SealDeterministicInPlace(buf, ad []byte) []byte {
	return k.sealInPlace(buf, ad, true)
}

// SealInPlace is SealDeterministicInPlace with a random nonce, for
// repositories that do not want equal blobs to seal to equal bytes.
func (k *MasterKey) SealInPlace(buf, ad []byte) []byte {
	return k.sealInPlace(buf, ad, false)
}

func (k *MasterKey) sealInPlace(buf, ad []byte, synthetic bool) []byte {
	n := chacha20poly1305.NonceSizeX
	if cap(buf)-len(buf) < chacha20poly1305.Overhead {
		grown := make([]byte, len(buf), len(buf)+chacha20poly1305.Overhead)
		copy(grown, buf)
		buf = grown
	}
	plaintext := buf[n:]
	var nonce [chacha20poly1305.NonceSizeX]byte
	if synthetic {
		nonce = k.syntheticNonce(plaintext, ad)
	} else if _, err := rand.Read(nonce[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the kernel RNG does not fail
	}
	copy(buf[:n], nonce[:])
	out := k.aead.Seal(plaintext[:0], nonce[:], plaintext, ad)
	return buf[:n+len(out)]
}

// NonceSize is the room SealDeterministicInPlace needs before the plaintext.
const NonceSize = chacha20poly1305.NonceSizeX

func (k *MasterKey) syntheticNonce(plaintext, ad []byte) [chacha20poly1305.NonceSizeX]byte {
	h := k.nonces.Get().(*blake3.Hasher)
	h.Reset()
	// A fixed-width length prefix keeps (ad, plaintext) pairs from running
	// together: the input is injective for every AD length, where a
	// one-byte prefix let an AD of 256 bytes collide with an empty one.
	var adLen [8]byte
	binary.LittleEndian.PutUint64(adLen[:], uint64(len(ad)))
	_, _ = h.Write(adLen[:])
	_, _ = h.Write(ad)
	_, _ = h.Write(plaintext)
	var nonce [chacha20poly1305.NonceSizeX]byte
	_, _ = h.Digest().Read(nonce[:])
	k.nonces.Put(h)
	return nonce
}

// Open authenticates and decrypts a sealed object, appending the plaintext
// to dst. Any damage or a mismatched ad gives ErrAuth.
func (k *MasterKey) Open(dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("sealed object of %d bytes is too short: %w", len(sealed), ErrAuth)
	}
	n := chacha20poly1305.NonceSizeX
	out, err := k.aead.Open(dst, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// StorageID names stored objects (packs, index files, manifests): the plain
// BLAKE3-256 of their bytes, so anyone can check an object is intact
// without the key, and identical uploads collapse to one name.
func StorageID(data []byte) chunk.ID {
	return chunk.ID(blake3.Sum256(data))
}
