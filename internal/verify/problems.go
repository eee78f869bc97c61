package verify

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/dedup-project/dedup/chunk"
)

// Problem kinds.
const (
	KindMissingBlob     = "missing-blob"     // a snapshot references a blob no index file lists
	KindMissingPack     = "missing-pack"     // an index file lists a pack the store does not hold
	KindDamagedPack     = "damaged-pack"     // a pack's size, bytes or header are wrong
	KindDamagedBlob     = "damaged-blob"     // a blob does not decrypt, decompress or match its ID
	KindPackMismatch    = "pack-mismatch"    // a pack's header and the index files disagree
	KindDamagedIndex    = "damaged-index"    // an index file does not open
	KindDamagedSnapshot = "damaged-snapshot" // a snapshot manifest does not open
	KindDamagedTree     = "damaged-tree"     // a tree or image map does not load or is inconsistent
	KindSizeMismatch    = "size-mismatch"    // a file's recorded size differs from its chunks
	KindDamagedKey      = "damaged-key"      // a key file is not intact
	KindUnindexedPack   = "unindexed-pack"   // a snapshot needs a pack no intact index file lists
)

// maxFiles bounds the paths listed per problem: enough to act on, while a
// damaged chunk shared by a million files does not produce a million lines.
const maxFiles = 20

// Problem is one integrity finding.
type Problem struct {
	Kind      string   `json:"kind"`
	Object    string   `json:"object,omitempty"`    // object name, e.g. "data/ab/ab12..." or "index/..."
	Blob      string   `json:"blob,omitempty"`      // blob ID if relevant
	Snapshots []string `json:"snapshots,omitempty"` // short IDs of the snapshots affected
	Files     []string `json:"files,omitempty"`     // paths affected, at most maxFiles
	// FileCount counts every affected file reference, including those not
	// listed in Files; a file present in three snapshots counts three times.
	FileCount int    `json:"file_count,omitempty"`
	Detail    string `json:"detail"`
}

// damage is what the walk needs to know about a damaged blob.
type damage struct {
	blob *Problem // the damaged-blob problem
	pack *Problem // the damaged-pack problem of the pack holding it
}

// collector gathers problems from concurrent checks and merges repeated
// findings about one object into one problem.
type collector struct {
	mu    sync.Mutex
	list  []*Problem
	byKey map[string]*Problem

	// Filled by the index and pack passes, read by the walk, which runs
	// after them: blobs found damaged, and packs whose every blob must be
	// taken as lost (missing, or the wrong size with no data pass to say
	// which blobs survive).
	damaged    map[chunk.ID][]damage
	wholePacks map[chunk.ID]*Problem
}

func newCollector() *collector {
	return &collector{
		byKey:      map[string]*Problem{},
		damaged:    map[chunk.ID][]damage{},
		wholePacks: map[chunk.ID]*Problem{},
	}
}

// add records a problem, or returns the one already recorded for the same
// kind, object and blob with detail appended to it when new.
func (c *collector) add(kind, object, blob, detail string) *Problem {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addLocked(kind, object, blob, detail)
}

func (c *collector) addLocked(kind, object, blob, detail string) *Problem {
	key := kind + "\x00" + object + "\x00" + blob
	if p := c.byKey[key]; p != nil {
		if detail != "" && !strings.Contains(p.Detail, detail) {
			if p.Detail != "" {
				p.Detail += "; "
			}
			p.Detail += detail
		}
		return p
	}
	p := &Problem{Kind: kind, Object: object, Blob: blob, Detail: detail}
	c.byKey[key] = p
	c.list = append(c.list, p)
	return p
}

// attribute records that the file or directory at path in snapshot snap
// depends on what p is about.
func (c *collector) attribute(p *Problem, snap, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	attributeLocked(p, snap, path)
}

func attributeLocked(p *Problem, snap, path string) {
	if !slices.Contains(p.Snapshots, snap) {
		p.Snapshots = append(p.Snapshots, snap)
	}
	// The same path in another snapshot is listed once but counted again.
	if len(p.Files) < maxFiles && !slices.Contains(p.Files, path) {
		p.Files = append(p.Files, path)
	}
	p.FileCount++
}

// markDamaged notes a damaged blob found by the data pass.
func (c *collector) markDamaged(id chunk.ID, blob, pack *Problem) {
	c.mu.Lock()
	c.damaged[id] = append(c.damaged[id], damage{blob: blob, pack: pack})
	c.mu.Unlock()
}

func (c *collector) markWholePack(id chunk.ID, p *Problem) {
	c.mu.Lock()
	c.wholePacks[id] = p
	c.mu.Unlock()
}

// clearWholePack is called when the data pass has found out exactly which
// blobs of a pack are damaged.
func (c *collector) clearWholePack(id chunk.ID) {
	c.mu.Lock()
	delete(c.wholePacks, id)
	c.mu.Unlock()
}

// blobTrouble returns the problems a reference to blob id stored in pack
// (zero if unknown) is affected by.
func (c *collector) blobTrouble(id, pack chunk.ID) []*Problem {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Problem
	for _, d := range c.damaged[id] {
		out = append(out, d.blob, d.pack)
	}
	if p := c.wholePacks[pack]; p != nil && !pack.IsZero() {
		out = append(out, p)
	}
	return out
}

// sorted returns the problems in a stable order: by kind, then object and blob.
func (c *collector) sorted() []Problem {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Problem, 0, len(c.list))
	for _, p := range c.list {
		out = append(out, *p)
	}
	slices.SortStableFunc(out, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Object, b.Object), cmp.Compare(a.Blob, b.Blob))
	})
	return out
}

// hints says, one line per remedy, what repairs the problems in rep.
func hints(rep *Report) []string {
	kinds := map[string]bool{}
	for _, p := range rep.Problems {
		kinds[p.Kind] = true
	}
	var out []string
	if kinds[KindDamagedIndex] || kinds[KindUnindexedPack] {
		out = append(out, "run `dedupctl index rebuild --from-packs` to index the packs no intact index file lists")
	}
	if rep.BlobsToStoreAgain > 0 {
		out = append(out, fmt.Sprintf("%d chunks of missing or damaged packs no longer count as stored: the next backup that reads their content stores them again (`dedupctl backup --level full` re-reads every file), and the snapshots named above restore fully once it has", rep.BlobsToStoreAgain))
	}
	if kinds[KindDamagedPack] && rep.BlobsRead == 0 {
		out = append(out, "run `dedupctl verify --read-data` to find out which chunks of the damaged packs are lost")
	}
	if kinds[KindMissingBlob] || kinds[KindDamagedTree] || kinds[KindSizeMismatch] {
		out = append(out, "files of the snapshots named above cannot be restored intact; `dedupctl backup --level full` of their sources stores them again")
	}
	if kinds[KindDamagedSnapshot] {
		out = append(out, "a damaged snapshot manifest cannot be repaired; the snapshot's data stays usable by the others")
	}
	if kinds[KindDamagedKey] {
		out = append(out, "remove a damaged key file with `dedupctl key remove ID` and add a new password with `dedupctl key add`")
	}
	return out
}

// splitUnneeded takes out the missing packs no snapshot depends on.
func splitUnneeded(ps []Problem) (problems []Problem, unneeded []string) {
	problems = ps[:0]
	for _, p := range ps {
		if p.Kind == KindMissingPack && p.FileCount == 0 {
			unneeded = append(unneeded, p.Object)
			continue
		}
		problems = append(problems, p)
	}
	return problems, unneeded
}
