package repo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store"
)

const keysPrefix = "keys/"

// ErrBadKeyFile marks a key file that no password can open: damaged,
// truncated, not a key file, named for other content, or asking for key
// derivation beyond the bounds in crypto. Such a file is skipped (and
// reported), never allowed to stop the others from being tried.
var ErrBadKeyFile = errors.New("unusable key file")

// maxKeyFileSize bounds what is read of one key file; a real one is
// well under 1 KiB.
const maxKeyFileSize = 64 << 10

// KeyInfo describes one key file.
type KeyInfo struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Host     string    `json:"host"`
	Username string    `json:"username"`
	Current  bool      `json:"current"`
	// Problem says why the key file cannot be used; empty for a good one.
	Problem string `json:"problem,omitempty"`
}

// KeyProblem names a key file that was skipped, and why.
type KeyProblem struct {
	ID  string
	Err error
}

func (p KeyProblem) String() string {
	return fmt.Sprintf("key file %s: %s", keyShort(p.ID), p.Reason())
}

// Reason is the problem without the ErrBadKeyFile prefix.
func (p KeyProblem) Reason() string {
	return strings.TrimPrefix(p.Err.Error(), ErrBadKeyFile.Error()+": ")
}

// noUsableKeyError says that no key file could even be tried.
type noUsableKeyError struct {
	location string
	problems []KeyProblem
}

func (e *noUsableKeyError) Error() string {
	return fmt.Sprintf("%s: no usable key file: %s", e.location, joinProblems(e.problems))
}

func (e *noUsableKeyError) Unwrap() error { return ErrBadKeyFile }

// readKeyFile reads and checks one key file without deriving anything.
// Content problems wrap ErrBadKeyFile; store errors are returned as they are.
func readKeyFile(ctx context.Context, s store.Store, name string) (*crypto.KeyFile, error) {
	data, err := store.ReadRange(ctx, s, name, 0, maxKeyFileSize+1)
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadKeyFile, maxKeyFileSize)
	}
	// The name is the storage ID of the content (docs/format.md §3): a
	// truncated file, or one planted under another file's name, fails here.
	if name != keysPrefix+crypto.StorageID(data).String() {
		return nil, fmt.Errorf("%w: damaged (content of %d bytes does not match its name)", ErrBadKeyFile, len(data))
	}
	var kf crypto.KeyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, fmt.Errorf("%w: not a key file: %v", ErrBadKeyFile, err)
	}
	if err := kf.KDF.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	return &kf, nil
}

// writeKey seals mk under password, stores the key file, and reads it back
// and unlocks it with the same password before returning, so a caller that
// goes on to remove another key knows this one works.
func writeKey(ctx context.Context, s store.Store, mk *crypto.MasterKey, password []byte, kdf crypto.KDFParams) (string, error) {
	if len(password) == 0 {
		return "", errors.New("empty password")
	}
	host, user := hostUser()
	kf, err := crypto.SealKey(ctx, mk, password, kdf, host, user)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(kf)
	if err != nil {
		return "", err
	}
	name := keysPrefix + crypto.StorageID(data).String()
	if err := s.Put(ctx, name, data); err != nil {
		return "", fmt.Errorf("write key file: %w", err)
	}
	if err := confirmKey(ctx, s, name, password, mk); err != nil {
		// A key file that does not open is of no use to anyone.
		_ = s.Delete(context.WithoutCancel(ctx), name)
		return "", fmt.Errorf("new key file %s did not open again after writing, nothing else changed: %w", keyShort(name), err)
	}
	return name, nil
}

func confirmKey(ctx context.Context, s store.Store, name string, password []byte, mk *crypto.MasterKey) error {
	kf, err := readKeyFile(ctx, s, name)
	if err != nil {
		return err
	}
	got, err := crypto.OpenKey(ctx, kf, password)
	if err != nil {
		return err
	}
	if !got.Equal(mk) {
		return errors.New("it holds another master key")
	}
	return nil
}

func keyShort(name string) string {
	id := strings.TrimPrefix(name, keysPrefix)
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// findKey tries every usable key file with password, the cheapest key
// derivation first, so planted costly files delay nothing when a key at
// the default cost opens. It returns the problems of the files it skipped.
func findKey(ctx context.Context, s store.Store, password []byte) (*crypto.MasterKey, string, []KeyProblem, error) {
	var names []string
	if err := s.List(ctx, keysPrefix, func(fi store.Info) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, "", nil, fmt.Errorf("list key files: %w", err)
	}
	if len(names) == 0 {
		return nil, "", nil, fmt.Errorf("%s: %w (no key files)", s.Location(), ErrNotRepository)
	}
	slices.Sort(names)
	type candidate struct {
		name string
		kf   *crypto.KeyFile
	}
	var cands []candidate
	var problems []KeyProblem
	for _, name := range names {
		kf, err := readKeyFile(ctx, s, name)
		switch {
		case err == nil:
			cands = append(cands, candidate{name, kf})
		case errors.Is(err, ErrBadKeyFile):
			problems = append(problems, KeyProblem{ID: strings.TrimPrefix(name, keysPrefix), Err: err})
		case store.IsNotFound(err):
			// removed since the listing
		default:
			return nil, "", nil, fmt.Errorf("read key file: %w", err)
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		return cmp.Compare(uint64(a.kf.KDF.Time)*uint64(a.kf.KDF.MemoryKiB), uint64(b.kf.KDF.Time)*uint64(b.kf.KDF.MemoryKiB))
	})
	wrong := 0
	for _, c := range cands {
		mk, err := crypto.OpenKey(ctx, c.kf, password)
		switch {
		case err == nil:
			return mk, c.name, problems, nil
		case ctx.Err() != nil:
			return nil, "", nil, ctx.Err()
		case errors.Is(err, crypto.ErrWrongPassword):
			wrong++
		default:
			problems = append(problems, KeyProblem{ID: strings.TrimPrefix(c.name, keysPrefix), Err: fmt.Errorf("%w: %v", ErrBadKeyFile, err)})
		}
	}
	if wrong == 0 {
		return nil, "", problems, &noUsableKeyError{s.Location(), problems}
	}
	if len(problems) > 0 {
		return nil, "", problems, fmt.Errorf("%w (also skipped %s)", crypto.ErrWrongPassword, joinProblems(problems))
	}
	return nil, "", nil, crypto.ErrWrongPassword
}

func joinProblems(ps []KeyProblem) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "; ")
}

// KeyProblems lists the key files skipped while opening the repository.
func (r *Repository) KeyProblems() []KeyProblem { return r.keyProblems }

// AddKey seals the master key under another password and returns the new
// key file's ID once the stored file has been read back and opened.
func (r *Repository) AddKey(ctx context.Context, password []byte, kdf crypto.KDFParams) (string, error) {
	if kdf.Algorithm == "" {
		kdf = crypto.DefaultKDF
	}
	name, err := writeKey(ctx, r.store, r.key, password, kdf)
	return strings.TrimPrefix(name, keysPrefix), err
}

// ListKeys describes every key file, unusable ones with their Problem.
func (r *Repository) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	var names []string
	if err := r.store.List(ctx, keysPrefix, func(fi store.Info) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, err
	}
	slices.Sort(names)
	out := make([]KeyInfo, 0, len(names))
	for _, name := range names {
		info := KeyInfo{ID: strings.TrimPrefix(name, keysPrefix), Current: name == r.keyID}
		kf, err := readKeyFile(ctx, r.store, name)
		switch {
		case err == nil:
			info.Created, info.Host, info.Username = kf.Created, kf.Host, kf.Username
		case errors.Is(err, ErrBadKeyFile):
			info.Problem = KeyProblem{Err: err}.Reason()
		case store.IsNotFound(err):
			continue
		default:
			return nil, fmt.Errorf("key file %s: %w", info.ID, err)
		}
		out = append(out, info)
	}
	return out, nil
}

// RemoveKey deletes a key file by ID or unique prefix of at least 8 hex
// digits (or its exact ID, however short, for a planted file). The key
// that opened this session cannot be removed.
func (r *Repository) RemoveKey(ctx context.Context, idPrefix string) error {
	keys, err := r.ListKeys(ctx)
	if err != nil {
		return err
	}
	var match []KeyInfo
	for _, k := range keys {
		if k.ID == idPrefix {
			match = []KeyInfo{k}
			break
		}
		if len(idPrefix) >= 8 && strings.HasPrefix(k.ID, idPrefix) {
			match = append(match, k)
		}
	}
	switch {
	case len(match) == 0 && len(idPrefix) < 8:
		return fmt.Errorf("key ID %q: give at least 8 hex digits", idPrefix)
	case len(match) == 0:
		return fmt.Errorf("no key file %q", idPrefix)
	case len(match) > 1:
		return fmt.Errorf("key ID prefix %q is ambiguous", idPrefix)
	case match[0].Current:
		return errors.New("refusing to remove the key in use; open the repository with another key to remove it")
	}
	return r.store.Delete(ctx, keysPrefix+match[0].ID)
}

// ChangePassword writes a key file for the new password and removes the
// one in use only after the new one has been read back from the store and
// opened with the new password, so no failure leaves no working password.
func (r *Repository) ChangePassword(ctx context.Context, password []byte, kdf crypto.KDFParams) (string, error) {
	id, err := r.AddKey(ctx, password, kdf)
	if err != nil {
		return "", err
	}
	if err := r.store.Delete(ctx, r.keyID); err != nil {
		return id, fmt.Errorf("new key %s written, but removing the old one failed: %w", keyShort(id), err)
	}
	r.keyID = keysPrefix + id
	return id, nil
}
