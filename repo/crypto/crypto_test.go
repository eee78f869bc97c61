package crypto_test

import (
	"bytes"
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
	kf, err := crypto.SealKey(k, []byte("pw"), crypto.TestKDF, "host", "user")
	if err != nil {
		t.Fatal(err)
	}
	got, err := crypto.OpenKey(kf, []byte("pw"))
	if err != nil || got.Encrypt != k.Encrypt || got.ID != k.ID || got.Pol != k.Pol {
		t.Fatalf("OpenKey: %v", err)
	}
	if _, err := crypto.OpenKey(kf, []byte("wrong")); !errors.Is(err, crypto.ErrWrongPassword) {
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
