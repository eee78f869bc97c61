package crypto_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/dedup-project/dedup/repo/crypto"
)

func TestSealOpen(t *testing.T) {
	k, err := crypto.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	plain, ad := []byte("secret config"), []byte("ad")
	for _, sealed := range [][]byte{k.Seal(nil, plain, ad), k.SealDeterministic(nil, plain, ad)} {
		got, err := k.Open(nil, sealed, ad)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("open: %v", err)
		}
		if _, err := k.Open(nil, sealed, []byte("other ad")); !errors.Is(err, crypto.ErrAuth) {
			t.Errorf("opened with the wrong AD: %v", err)
		}
		sealed[30] ^= 1
		if _, err := k.Open(nil, sealed, ad); !errors.Is(err, crypto.ErrAuth) {
			t.Errorf("opened a damaged object: %v", err)
		}
	}
	if bytes.Equal(k.Seal(nil, plain, ad), k.Seal(nil, plain, ad)) {
		t.Error("random-nonce sealing repeated itself")
	}
}

func TestSealDeterministic(t *testing.T) {
	k, _ := crypto.NewMasterKey()
	a := k.SealDeterministic(nil, []byte("same"), []byte("ad"))
	if !bytes.Equal(a, k.SealDeterministic(nil, []byte("same"), []byte("ad"))) {
		t.Fatal("equal inputs sealed differently")
	}
	b := k.SealDeterministic(nil, []byte("samf"), []byte("ad"))
	c := k.SealDeterministic(nil, []byte("same"), []byte("ae"))
	if bytes.Equal(a[:24], b[:24]) || bytes.Equal(a[:24], c[:24]) {
		t.Error("a different payload or AD reused the nonce")
	}
	other, _ := crypto.NewMasterKey()
	if bytes.Equal(a, other.SealDeterministic(nil, []byte("same"), []byte("ad"))) {
		t.Error("two keys sealed alike")
	}
}

func TestKeyFile(t *testing.T) {
	k, _ := crypto.NewMasterKey()
	kf, err := crypto.SealKey(context.Background(), k, []byte("pw"), crypto.TestKDF, "host", "user")
	if err != nil {
		t.Fatal(err)
	}
	got, err := crypto.OpenKey(context.Background(), kf, []byte("pw"))
	if err != nil || got.Encrypt != k.Encrypt || got.ID != k.ID || got.Pol != k.Pol {
		t.Fatalf("OpenKey: %v", err)
	}
	if _, err := crypto.OpenKey(context.Background(), kf, []byte("wrong")); !errors.Is(err, crypto.ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}
}

func TestSealDeterministicInPlace(t *testing.T) {
	k, _ := crypto.NewMasterKey()
	for _, spare := range []int{0, 3, 64} {
		plain := []byte("payload to seal in place")
		buf := make([]byte, crypto.NonceSize+len(plain), crypto.NonceSize+len(plain)+spare)
		copy(buf[crypto.NonceSize:], plain)
		got := k.SealDeterministicInPlace(buf, []byte("ad"))
		if want := k.SealDeterministic(nil, plain, []byte("ad")); !bytes.Equal(got, want) {
			t.Fatalf("spare %d: in-place sealing differs from SealDeterministic", spare)
		}
	}
}

// The synthetic nonce must depend on where AD ends and the payload starts
// for every AD length: with a one-byte length prefix an AD of 256 bytes
// and an empty one framed the same hash input, so two different
// (AD, payload) pairs sealed under the same nonce.
func TestSyntheticNonceLongAD(t *testing.T) {
	k, _ := crypto.NewMasterKey()
	long := bytes.Repeat([]byte{'x'}, 256)
	a := k.SealDeterministic(nil, []byte("P"), long)
	b := k.SealDeterministic(nil, append(bytes.Clone(long), 'P'), nil)
	if bytes.Equal(a[:crypto.NonceSize], b[:crypto.NonceSize]) {
		t.Fatal("different (AD, payload) pairs share a synthetic nonce")
	}
	for _, n := range []int{255, 256, 257, 65536} {
		ad := bytes.Repeat([]byte{'y'}, n)
		sealed := k.SealDeterministic(nil, []byte("payload"), ad)
		if got, err := k.Open(nil, sealed, ad); err != nil || string(got) != "payload" {
			t.Fatalf("AD of %d bytes: %v", n, err)
		}
	}
}

func TestKDFBounds(t *testing.T) {
	salt := make([]byte, 32)
	ok := crypto.DefaultKDF
	ok.Salt = salt
	if err := ok.Check(); err != nil {
		t.Fatalf("default parameters refused: %v", err)
	}
	for name, mut := range map[string]func(p *crypto.KDFParams){
		"huge memory":      func(p *crypto.KDFParams) { p.MemoryKiB = 1 << 31 },
		"memory over max":  func(p *crypto.KDFParams) { p.MemoryKiB = crypto.MaxKDFMemoryKiB + 1 },
		"huge time":        func(p *crypto.KDFParams) { p.Time = 1 << 31 },
		"too much work":    func(p *crypto.KDFParams) { p.Time, p.MemoryKiB = 8, crypto.MaxKDFMemoryKiB },
		"zero time":        func(p *crypto.KDFParams) { p.Time = 0 },
		"zero threads":     func(p *crypto.KDFParams) { p.Threads = 0 },
		"too many threads": func(p *crypto.KDFParams) { p.Threads = 255 },
		"short salt":       func(p *crypto.KDFParams) { p.Salt = salt[:8] },
		"other algorithm":  func(p *crypto.KDFParams) { p.Algorithm = "scrypt" },
	} {
		p := ok
		mut(&p)
		if err := p.Check(); !errors.Is(err, crypto.ErrBadKDF) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A key file asking for 2 TiB must be refused before any memory is
	// allocated: the test would die of it otherwise.
	k, _ := crypto.NewMasterKey()
	kf, err := crypto.SealKey(context.Background(), k, []byte("pw"), crypto.TestKDF, "", "")
	if err != nil {
		t.Fatal(err)
	}
	kf.KDF.MemoryKiB = 1 << 31
	if _, err := crypto.OpenKey(context.Background(), kf, []byte("pw")); !errors.Is(err, crypto.ErrBadKDF) {
		t.Fatalf("OpenKey with huge memory: %v", err)
	}
}

func TestOpenKeyCancelled(t *testing.T) {
	k, _ := crypto.NewMasterKey()
	kf, err := crypto.SealKey(context.Background(), k, []byte("pw"), crypto.TestKDF, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := crypto.OpenKey(ctx, kf, []byte("pw")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled OpenKey: %v", err)
	}
}
