// Package repo is the repository layer: the format of what is kept in a
// store (config, key files, packs, index files, snapshot manifests, trees)
// and the read and write paths over it. docs/format.md describes the bytes.
package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store"
)

// Blob types.
const (
	BlobData uint8 = 1
	BlobTree uint8 = 2
)

// FormatVersion is the repository format this code writes and reads.
const FormatVersion = 1

const configName = "config"

var configAD = []byte("dedup.config.v1")

// Errors a caller may classify.
var (
	ErrNotRepository = errors.New("not a dedup repository")
	ErrAlreadyExists = errors.New("a repository already exists there")
	// ErrNoAtomicCreate: the store cannot refuse a second create of one
	// name atomically, so two inits racing could replace each other's
	// config and leave one of them with a key to nothing.
	ErrNoAtomicCreate = errors.New("refusing to create a repository: the store does not support conditional writes " +
		"(If-None-Match), so a concurrent init could silently replace this one's config; use a server that supports them")
)

// Config is the repository's sealed configuration, fixed at init.
type Config struct {
	Version     int       `json:"version"`
	ID          string    `json:"id"`
	Created     time.Time `json:"created"`
	ChunkMin    uint      `json:"chunk_min"`
	ChunkMax    uint      `json:"chunk_max"`
	ChunkAvgBit int       `json:"chunk_avg_bits"`
	PackSize    int       `json:"pack_size"`
	Compression string    `json:"compression"` // "zstd-fastest", "zstd-default", "none"
	// PrivatePacks turns convergent packs off: blobs are sealed with
	// random nonces and large files share packs with others, so the
	// bucket shows neither file sizes nor equal content across hosts
	// (docs/design.md, Security).
	PrivatePacks bool `json:"private_packs,omitempty"`
}

// Default chunking: 512 KiB minimum, 1 MiB average, 8 MiB maximum (restic's
// choice too). Smaller averages dedup slightly better inside files that change
// in place but multiply index entries, and the index must stay small and
// fast on a host; larger ones lose dedup on configuration-sized edits.
const (
	DefaultChunkMin    = 512 << 10
	DefaultChunkMax    = 8 << 20
	DefaultChunkAvgBit = 20
	// DefaultPackSize: 16 MiB keeps S3 request counts low (about 64 PUTs per
	// GiB) while bounding the memory one in-flight pack holds.
	DefaultPackSize = 16 << 20
)

// InitOptions configure a new repository.
type InitOptions struct {
	KDF         crypto.KDFParams
	PackSize    int
	Compression string
	// PrivatePacks: see Config.PrivatePacks.
	PrivatePacks bool
}

// Options configure an opened repository.
type Options struct {
	Logger *slog.Logger
}

// Repository is an opened, unlocked repository.
type Repository struct {
	store store.Store
	key   *crypto.MasterKey
	cfg   Config
	keyID string
	idx   Index
	log   *slog.Logger
	enc   *zstd.Encoder
	dec   *zstd.Decoder // data blobs: bounded by the largest chunk
	// decMeta inflates trees, index files and manifests, which grow with
	// directory and repository size rather than with the chunk size.
	decMeta *zstd.Decoder
	// keyProblems are the key files skipped while opening.
	keyProblems []KeyProblem
	seen        *damageLog // what reads found lost (see ForgetDamageSeen)
}

// maxMetaSize bounds one decompressed tree, index file or manifest: about
// a million directory entries, far beyond what one directory holds.
const maxMetaSize = 256 << 20

// Index is what the repository needs of the local index cache.
type Index interface {
	Lookup(ctx context.Context, id chunk.ID) (index.Location, bool, error)
	Has(ctx context.Context, id chunk.ID) (bool, error)
	AddIndexFile(ctx context.Context, file chunk.ID, entries []index.Entry) error
	LoadedIndexFiles(ctx context.Context) (map[chunk.ID]struct{}, error)
	Each(ctx context.Context, fn func(index.Entry) error) error
	Count(ctx context.Context) (int, error)
	Reset(ctx context.Context) error
}

func hostUser() (string, string) {
	host, _ := os.Hostname()
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return host, name
}

// Init creates a repository in an empty store. It refuses, touching nothing,
// when the store already holds a config.
func Init(ctx context.Context, s store.Store, password []byte, opts InitOptions) (Config, error) {
	if !s.Capabilities().AtomicCreate {
		return Config{}, fmt.Errorf("%s: %w", s.Location(), ErrNoAtomicCreate)
	}
	if _, err := s.Stat(ctx, configName); err == nil {
		return Config{}, fmt.Errorf("%s: %w", s.Location(), ErrAlreadyExists)
	} else if !store.IsNotFound(err) {
		return Config{}, fmt.Errorf("check for an existing repository: %w", err)
	}
	if opts.PackSize == 0 {
		opts.PackSize = DefaultPackSize
	}
	if opts.PackSize < 1<<20 || opts.PackSize > 512<<20 {
		return Config{}, fmt.Errorf("pack size %d out of range (1 MiB to 512 MiB)", opts.PackSize)
	}
	if opts.Compression == "" {
		opts.Compression = "zstd-fastest"
	}
	if _, err := encoderLevel(opts.Compression); err != nil {
		return Config{}, err
	}
	if opts.KDF.Algorithm == "" {
		opts.KDF = crypto.DefaultKDF
	}
	mk, err := crypto.NewMasterKey()
	if err != nil {
		return Config{}, err
	}
	var rid [32]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return Config{}, err
	}
	cfg := Config{
		Version: FormatVersion, ID: hex.EncodeToString(rid[:]), Created: time.Now().UTC(),
		ChunkMin: DefaultChunkMin, ChunkMax: DefaultChunkMax, ChunkAvgBit: DefaultChunkAvgBit,
		PackSize: opts.PackSize, Compression: opts.Compression, PrivatePacks: opts.PrivatePacks,
	}
	keyName, err := writeKey(ctx, s, mk, password, opts.KDF)
	if err != nil {
		return Config{}, err
	}
	// A store may learn only from its first write that the server
	// ignores conditions (S3 answering 501): ask again before the one
	// object whose name is not its content.
	if !s.Capabilities().AtomicCreate {
		_ = s.Delete(context.WithoutCancel(ctx), keyName)
		return Config{}, fmt.Errorf("%s: %w", s.Location(), ErrNoAtomicCreate)
	}
	plain, err := json.Marshal(cfg)
	if err != nil {
		return Config{}, err
	}
	if err := s.Put(ctx, configName, mk.Seal(nil, plain, configAD)); err != nil {
		// Another init won the race: leave its repository as it is.
		_ = s.Delete(context.WithoutCancel(ctx), keyName)
		if store.IsExists(err) {
			return Config{}, fmt.Errorf("%s: %w", s.Location(), ErrAlreadyExists)
		}
		return Config{}, fmt.Errorf("write config: %w", err)
	}
	return cfg, nil
}

// Open unlocks the repository in s with password.
func Open(ctx context.Context, s store.Store, password []byte, opts Options) (*Repository, error) {
	sealedCfg, err := store.ReadAll(ctx, s, configName)
	if err != nil {
		if store.IsNotFound(err) {
			return nil, fmt.Errorf("%s: %w (no config; run `dedupctl init` first)", s.Location(), ErrNotRepository)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	mk, keyID, keyProblems, err := findKey(ctx, s, password)
	if err != nil {
		return nil, err
	}
	plain, err := mk.Open(nil, sealedCfg, configAD)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(plain, &cfg); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	if cfg.Version != FormatVersion {
		return nil, fmt.Errorf("repository format version %d is not supported (this build reads version %d)", cfg.Version, FormatVersion)
	}
	level, err := encoderLevel(cfg.Compression)
	if err != nil {
		return nil, err
	}
	// Concurrency 0 gives one encoder per GOMAXPROCS for EncodeAll callers;
	// low-memory mode trades a little speed for a flat RSS.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithLowerEncoderMem(true),
		zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, err
	}
	// Blobs are at most ChunkMax bytes; refuse to inflate anything larger,
	// so a damaged or hostile blob cannot exhaust memory.
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(uint64(cfg.ChunkMax)+(1<<20)), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, err
	}
	decMeta, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(maxMetaSize), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Repository{store: s, key: mk, cfg: cfg, keyID: keyID, keyProblems: keyProblems, log: log, enc: enc, dec: dec, decMeta: decMeta,
		seen: &damageLog{}}, nil
}

func encoderLevel(name string) (zstd.EncoderLevel, error) {
	switch name {
	case "zstd-fastest", "none":
		return zstd.SpeedFastest, nil
	case "zstd-default":
		return zstd.SpeedDefault, nil
	case "zstd-better":
		return zstd.SpeedBetterCompression, nil
	}
	return 0, fmt.Errorf("unknown compression %q (want zstd-fastest, zstd-default, zstd-better or none)", name)
}

// Config returns the repository configuration.
func (r *Repository) Config() Config { return r.cfg }

// Store returns the underlying store.
func (r *Repository) Store() store.Store { return r.store }

// KeyID is the name of the key file that unlocked the repository.
func (r *Repository) KeyID() string { return r.keyID }

// UseIndex attaches the local index cache; it must be called before blobs
// are read or written.
func (r *Repository) UseIndex(idx Index) { r.idx = idx }

// Index returns the attached index cache.
func (r *Repository) Index() Index { return r.idx }

// BlobID computes the keyed ID of a blob's plaintext.
func (r *Repository) BlobID(data []byte) chunk.ID { return r.key.BlobID(data) }

// Polynomial is the repository's secret chunker polynomial.
func (r *Repository) Polynomial() uint64 { return uint64(r.key.Pol) }

// Close releases the compressor state. It does not close the store or index.
func (r *Repository) Close() error {
	r.enc.Close()
	r.dec.Close()
	r.decMeta.Close()
	return nil
}
