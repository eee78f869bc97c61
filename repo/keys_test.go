package repo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/mem"
)

// journalStore records Put, Get and Delete calls on key files, and can
// store damaged bytes for them while reporting success, as a faulty disk
// or proxy might.
type journalStore struct {
	store.Store
	mu      sync.Mutex
	ops     []string
	damageK bool
}

func (j *journalStore) note(op, name string) {
	if strings.HasPrefix(name, "keys/") {
		j.mu.Lock()
		j.ops = append(j.ops, op+" "+name)
		j.mu.Unlock()
	}
}

func (j *journalStore) Put(ctx context.Context, name string, data []byte) error {
	j.note("put", name)
	if j.damageK && strings.HasPrefix(name, "keys/") {
		data = data[:len(data)/2]
	}
	return j.Store.Put(ctx, name, data)
}

func (j *journalStore) Get(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	j.note("get", name)
	return j.Store.Get(ctx, name, off, n)
}

func (j *journalStore) Delete(ctx context.Context, name string) error {
	j.note("delete", name)
	return j.Store.Delete(ctx, name)
}

func initRepo(t *testing.T, st store.Store) *repo.Repository {
	t.Helper()
	ctx := context.Background()
	if _, err := repo.Init(ctx, st, []byte("old"), repo.InitOptions{KDF: crypto.TestKDF}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, st, []byte("old"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// A new key file that does not come back intact must not cost the old one.
func TestChangePasswordKeepsOldKeyWhenNewIsDamaged(t *testing.T) {
	ctx := context.Background()
	j := &journalStore{Store: mem.New()}
	r := initRepo(t, j)
	j.damageK = true
	if _, err := r.ChangePassword(ctx, []byte("new"), crypto.TestKDF); err == nil {
		t.Fatal("ChangePassword succeeded although the new key file was stored damaged")
	}
	j.damageK = false
	if _, err := repo.Open(ctx, j, []byte("old"), repo.Options{}); err != nil {
		t.Fatalf("old password no longer opens: %v", err)
	}
	keys, err := r.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].Problem != "" {
		t.Fatalf("keys after the failed change: %+v, %v", keys, err)
	}
}

// The old key goes only after the new one was written, read back and
// opened.
func TestChangePasswordOrder(t *testing.T) {
	ctx := context.Background()
	j := &journalStore{Store: mem.New()}
	r := initRepo(t, j)
	old := r.KeyID()
	j.ops = nil
	id, err := r.ChangePassword(ctx, []byte("new"), crypto.TestKDF)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"put keys/" + id, "get keys/" + id, "delete " + old}
	if fmt.Sprint(j.ops) != fmt.Sprint(want) {
		t.Fatalf("operations on key files:\n got %v\nwant %v", j.ops, want)
	}
	if _, err := repo.Open(ctx, j, []byte("new"), repo.Options{}); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if _, err := repo.Open(ctx, j, []byte("old"), repo.Options{}); !errors.Is(err, crypto.ErrWrongPassword) {
		t.Fatalf("old password: %v", err)
	}
}

// plant stores data under keys/<storage ID of data>, as anyone with write
// access to the store can, and returns the ID.
func plant(t *testing.T, st store.Store, data []byte) string {
	t.Helper()
	id := crypto.StorageID(data).String()
	if err := st.Put(context.Background(), "keys/"+id, data); err != nil {
		t.Fatal(err)
	}
	return id
}

func keyFileJSON(t *testing.T, st store.Store, id string) []byte {
	t.Helper()
	data, err := store.ReadAll(context.Background(), st, "keys/"+id)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBadKeyFilesAreSkippedListedAndRemovable(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	r := initRepo(t, st)
	good := strings.TrimPrefix(r.KeyID(), "keys/")

	var kf map[string]any
	if err := json.Unmarshal(keyFileJSON(t, st, good), &kf); err != nil {
		t.Fatal(err)
	}
	kf["kdf"].(map[string]any)["memory_kib"] = 1 << 31 // 2 TiB: would kill the process
	huge, _ := json.Marshal(kf)
	kf["kdf"].(map[string]any)["memory_kib"] = 64
	kf["kdf"].(map[string]any)["time"] = 1 << 30 // would run for years
	slow, _ := json.Marshal(kf)

	bad := map[string]string{
		plant(t, st, huge):                  "memory",
		plant(t, st, slow):                  "time",
		plant(t, st, []byte("\x00garbage")): "not a key file",
	}
	// A copy of the good key under a name that is not its hash, and a
	// truncated key file under its original name.
	misnamed := strings.Repeat("ab", 32)
	if err := st.Put(ctx, "keys/"+misnamed, keyFileJSON(t, st, good)); err != nil {
		t.Fatal(err)
	}
	bad[misnamed] = "does not match its name"
	other, err := r.AddKey(ctx, []byte("other"), crypto.TestKDF)
	if err != nil {
		t.Fatal(err)
	}
	data := keyFileJSON(t, st, other)
	if err := st.Delete(ctx, "keys/"+other); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "keys/"+other, data[:len(data)-10]); err != nil {
		t.Fatal(err)
	}
	bad[other] = "damaged"

	r2, err := repo.Open(ctx, st, []byte("old"), repo.Options{})
	if err != nil {
		t.Fatalf("open with bad key files planted: %v", err)
	}
	defer r2.Close()
	if got := len(r2.KeyProblems()); got != len(bad) {
		t.Errorf("%d key problems reported, want %d: %v", got, len(bad), r2.KeyProblems())
	}
	if _, err := repo.Open(ctx, st, []byte("wrong"), repo.Options{}); !errors.Is(err, crypto.ErrWrongPassword) {
		t.Errorf("wrong password with bad key files: %v", err)
	}

	keys, err := r2.ListKeys(ctx)
	if err != nil {
		t.Fatalf("list keys: %v", err)
	}
	for _, k := range keys {
		want, isBad := bad[k.ID]
		switch {
		case isBad && !strings.Contains(k.Problem, want):
			t.Errorf("key %s: problem %q, want it to mention %q", k.ID[:8], k.Problem, want)
		case !isBad && k.Problem != "":
			t.Errorf("good key %s listed with problem %q", k.ID[:8], k.Problem)
		}
	}
	for id := range bad {
		if err := r2.RemoveKey(ctx, id); err != nil {
			t.Errorf("remove bad key %s: %v", id[:8], err)
		}
	}
	if keys, _ := r2.ListKeys(ctx); len(keys) != 1 {
		t.Errorf("%d keys left, want 1", len(keys))
	}
}

// A repository whose only key file is damaged says so, rather than
// blaming the password.
func TestOnlyKeyDamaged(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	r := initRepo(t, st)
	id := strings.TrimPrefix(r.KeyID(), "keys/")
	data := keyFileJSON(t, st, id)
	for name, bytes := range map[string][]byte{"truncated": data[:len(data)/2], "garbage": []byte("garbage")} {
		_ = st.Delete(ctx, "keys/"+id)
		if err := st.Put(ctx, "keys/"+id, bytes); err != nil {
			t.Fatal(err)
		}
		_, err := repo.Open(ctx, st, []byte("old"), repo.Options{})
		if !errors.Is(err, repo.ErrBadKeyFile) || errors.Is(err, crypto.ErrWrongPassword) || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("%s key file: %v", name, err)
		}
	}
}
