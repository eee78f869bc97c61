package verify

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/repo/crypto"
)

// A key file planted with key derivation beyond the bounds opening
// enforces is as unusable as a damaged one, and verify says so.
func TestPlantedKeyFileOutOfBounds(t *testing.T) {
	tr := newTestRepo(t)
	kf, err := crypto.SealKey(context.Background(), mustMasterKey(t), []byte("pw"), crypto.TestKDF, "", "")
	if err != nil {
		t.Fatal(err)
	}
	kf.KDF.MemoryKiB = 1 << 31
	data, err := json.Marshal(kf)
	if err != nil {
		t.Fatal(err)
	}
	name := "keys/" + crypto.StorageID(data).String()
	if err := tr.store.Put(context.Background(), name, data); err != nil {
		t.Fatal(err)
	}
	rep := tr.verify(false)
	if p := findProblem(rep, KindDamagedKey, name); p == nil || !strings.Contains(p.Detail, "memory") || len(rep.Problems) != 1 {
		dumpProblems(t, rep)
		t.Fatalf("planted key %+v", p)
	}
}

func mustMasterKey(t *testing.T) *crypto.MasterKey {
	t.Helper()
	k, err := crypto.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
