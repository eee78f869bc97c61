package crypto

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/zeebo/blake3"
)

// A derivation that is still running must not hold up a cancelled caller:
// argon2 cannot be interrupted, so the caller stops waiting for it.
func TestCancellableReturnsWhileRunning(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	errc := make(chan error, 1)
	go func() {
		_, err := cancellable(ctx, func() []byte {
			close(started)
			<-release
			return nil
		})
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// Blobs and pack headers written before the nonce input got its 8-byte
// length prefix still open: readers take the nonce stored in front of the
// ciphertext and never derive it.
func TestOpenPreviousSyntheticNonce(t *testing.T) {
	k, err := NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	plain, ad := []byte("payload"), []byte("dedup.packheader.v1")
	// The previous derivation: one length byte, then AD and payload.
	h := k.nonces.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write([]byte{byte(len(ad))})
	_, _ = h.Write(ad)
	_, _ = h.Write(plain)
	var old [NonceSize]byte
	_, _ = h.Digest().Read(old[:])
	sealed := k.aead.Seal(old[:], old[:], plain, ad)

	got, err := k.Open(nil, sealed, ad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("object sealed with the previous nonce derivation: %v", err)
	}
	if bytes.Equal(k.SealDeterministic(nil, plain, ad)[:NonceSize], old[:]) {
		t.Fatal("nonce derivation unchanged")
	}
}
