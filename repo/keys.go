package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store"
)

const keysPrefix = "keys/"

// KeyInfo describes one key file.
type KeyInfo struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Host     string    `json:"host"`
	Username string    `json:"username"`
	Current  bool      `json:"current"`
}

func writeKey(ctx context.Context, s store.Store, mk *crypto.MasterKey, password []byte, kdf crypto.KDFParams) (string, error) {
	if len(password) == 0 {
		return "", errors.New("empty password")
	}
	host, user := hostUser()
	kf, err := crypto.SealKey(mk, password, kdf, host, user)
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
	return name, nil
}

func findKey(ctx context.Context, s store.Store, password []byte) (*crypto.MasterKey, string, error) {
	var names []string
	if err := s.List(ctx, keysPrefix, func(fi store.Info) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, "", fmt.Errorf("list key files: %w", err)
	}
	if len(names) == 0 {
		return nil, "", fmt.Errorf("%s: %w (no key files)", s.Location(), ErrNotRepository)
	}
	for _, name := range names {
		data, err := store.ReadAll(ctx, s, name)
		if err != nil {
			return nil, "", fmt.Errorf("read key file: %w", err)
		}
		var kf crypto.KeyFile
		if err := json.Unmarshal(data, &kf); err != nil {
			continue // a damaged key file must not stop others from opening
		}
		mk, err := crypto.OpenKey(&kf, password)
		if err == nil {
			return mk, name, nil
		}
	}
	return nil, "", crypto.ErrWrongPassword
}

// AddKey seals the master key under another password and returns the new
// key file's ID.
func (r *Repository) AddKey(ctx context.Context, password []byte, kdf crypto.KDFParams) (string, error) {
	if kdf.Algorithm == "" {
		kdf = crypto.DefaultKDF
	}
	name, err := writeKey(ctx, r.store, r.key, password, kdf)
	return strings.TrimPrefix(name, keysPrefix), err
}

// ListKeys describes every key file.
func (r *Repository) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := r.store.List(ctx, keysPrefix, func(fi store.Info) error {
		data, err := store.ReadAll(ctx, r.store, fi.Name)
		if err != nil {
			return err
		}
		var kf crypto.KeyFile
		if err := json.Unmarshal(data, &kf); err != nil {
			return fmt.Errorf("key file %s: %w", fi.Name, err)
		}
		out = append(out, KeyInfo{
			ID: strings.TrimPrefix(fi.Name, keysPrefix), Created: kf.Created,
			Host: kf.Host, Username: kf.Username, Current: fi.Name == r.keyID,
		})
		return nil
	})
	return out, err
}

// RemoveKey deletes a key file by ID or unique prefix. The key that opened
// this session, and the last key, cannot be removed.
func (r *Repository) RemoveKey(ctx context.Context, idPrefix string) error {
	keys, err := r.ListKeys(ctx)
	if err != nil {
		return err
	}
	var match []KeyInfo
	for _, k := range keys {
		if strings.HasPrefix(k.ID, idPrefix) {
			match = append(match, k)
		}
	}
	switch {
	case len(idPrefix) < 8:
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

// ChangePassword writes a key file for the new password, then removes the
// one in use, so a failure in between leaves both passwords working rather
// than none.
func (r *Repository) ChangePassword(ctx context.Context, password []byte, kdf crypto.KDFParams) (string, error) {
	id, err := r.AddKey(ctx, password, kdf)
	if err != nil {
		return "", err
	}
	if err := r.store.Delete(ctx, r.keyID); err != nil {
		return id, fmt.Errorf("new key %s written, but removing the old one failed: %w", id[:8], err)
	}
	r.keyID = keysPrefix + id
	return id, nil
}
