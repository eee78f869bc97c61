package index

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dedup-project/dedup/chunk"
)

// Key prefixes; see doc.go for the layout.
const (
	prefixChunk = 'c'
	prefixIndex = 'i'
	prefixFile  = 'f'
	prefixState = 's'
	// prefixRun marks completed backup runs: 'r' + token -> generation.
	prefixRun = 'r'

	prefixPack    = 'p'
	prefixPackNum = 'n'

	// prefixLostPack and prefixBad record damage (see damage.go); Reset
	// keeps them.
	prefixLostPack = 'x'
	prefixBad      = 'b'
)

const (
	// resetKey marks a Reset in progress.
	resetKey = string(prefixState) + "reset"
	// packSeqKey holds the next unused pack number.
	packSeqKey = string(prefixState) + "packseq"
	// genKey holds the generation: raised by every Reset, so files-cache
	// entries recorded before it are no longer trusted without checking.
	genKey = string(prefixState) + "generation"
	// runSeqKey holds the last backup run token handed out.
	runSeqKey = string(prefixState) + "runseq"
)

const (
	// locationSize is the stored location: pack number, type, offset,
	// length, raw length.
	locationSize = 4 + 1 + 4 + 4 + 4

	fileStateVersion = 2
	// fileStateHeader is version, seven 8-byte integers and the chunk count.
	fileStateHeader = 1 + 7*8 + 4
	// fileStateHeaderV1 is the version 1 layout, without the generation.
	fileStateHeaderV1 = 1 + 6*8 + 4

	// maxKeySize stays below badger's key limit of 65000 bytes; real paths
	// are at most PATH_MAX (4096) anyway.
	maxKeySize = 60000
)

func idKey(prefix byte, id chunk.ID) []byte {
	k := make([]byte, 1+len(id))
	k[0] = prefix
	copy(k[1:], id[:])
	return k
}

// storedLocation is a Location with the pack as its number.
type storedLocation struct {
	pack uint32
	Location
}

func encodeLocation(pack uint32, l Location) []byte {
	b := make([]byte, locationSize)
	binary.BigEndian.PutUint32(b, pack)
	b[4] = byte(l.Type)
	binary.BigEndian.PutUint32(b[5:], l.Offset)
	binary.BigEndian.PutUint32(b[9:], l.Length)
	binary.BigEndian.PutUint32(b[13:], l.RawLength)
	return b
}

// decodeLocation decodes all but the pack ID, which the caller resolves.
func decodeLocation(b []byte) (storedLocation, error) {
	var l storedLocation
	if len(b) != locationSize {
		return l, fmt.Errorf("location: %d bytes, want %d", len(b), locationSize)
	}
	l.pack = binary.BigEndian.Uint32(b)
	l.Type = BlobType(b[4])
	l.Offset = binary.BigEndian.Uint32(b[5:])
	l.Length = binary.BigEndian.Uint32(b[9:])
	l.RawLength = binary.BigEndian.Uint32(b[13:])
	return l, nil
}

// filePrefix is the key prefix of all files cache entries of namespace ns.
func filePrefix(ns string) ([]byte, error) {
	if ns == "" {
		return nil, errors.New("empty namespace")
	}
	for i := 0; i < len(ns); i++ {
		if ns[i] == 0 {
			return nil, fmt.Errorf("namespace %q contains a NUL byte", ns)
		}
	}
	k := make([]byte, 0, 2+len(ns))
	k = append(k, prefixFile)
	k = append(k, ns...)
	return append(k, 0), nil
}

func fileKey(prefix, path []byte) ([]byte, error) {
	if len(path) == 0 {
		return nil, errors.New("empty path")
	}
	if len(prefix)+len(path) > maxKeySize {
		return nil, fmt.Errorf("namespace and path too long (%d bytes)", len(prefix)+len(path))
	}
	k := make([]byte, 0, len(prefix)+len(path))
	k = append(k, prefix...)
	return append(k, path...), nil
}

func encodeFileState(s FileState) []byte {
	b := make([]byte, fileStateHeader+len(s.Chunks)*32)
	b[0] = fileStateVersion
	be := binary.BigEndian
	be.PutUint64(b[1:], s.Dev)
	be.PutUint64(b[9:], s.Ino)
	be.PutUint64(b[17:], uint64(s.Size))
	be.PutUint64(b[25:], uint64(s.MtimeNs))
	be.PutUint64(b[33:], uint64(s.CtimeNs))
	be.PutUint64(b[41:], uint64(s.SeenUnix))
	be.PutUint64(b[49:], s.Run)
	be.PutUint32(b[57:], uint32(len(s.Chunks)))
	p := b[fileStateHeader:]
	for _, id := range s.Chunks {
		p = p[copy(p, id[:]):]
	}
	return b
}

// fileSeen reads only the SeenUnix field, for expiry scans.
func fileSeen(b []byte) (int64, error) {
	if len(b) < fileStateHeaderV1 || b[0] < 1 || b[0] > fileStateVersion {
		return 0, errors.New("file state: bad header")
	}
	return int64(binary.BigEndian.Uint64(b[41:])), nil
}

func decodeFileState(b []byte) (FileState, error) {
	var s FileState
	if len(b) < 1 {
		return s, errors.New("file state: empty")
	}
	// Version 1 records lack the run: they decode with Run 0, which
	// makes the backup verify their chunks once.
	header, countAt := fileStateHeader, 57
	switch b[0] {
	case fileStateVersion:
	case 1:
		header, countAt = fileStateHeaderV1, 49
	default:
		return s, fmt.Errorf("file state: unknown version %d", b[0])
	}
	if len(b) < header {
		return s, fmt.Errorf("file state: %d bytes, want at least %d", len(b), header)
	}
	be := binary.BigEndian
	n := be.Uint32(b[countAt:])
	if uint64(len(b)-header) != uint64(n)*32 {
		return s, fmt.Errorf("file state: %d bytes for %d chunks", len(b), n)
	}
	s.Dev = be.Uint64(b[1:])
	s.Ino = be.Uint64(b[9:])
	s.Size = int64(be.Uint64(b[17:]))
	s.MtimeNs = int64(be.Uint64(b[25:]))
	s.CtimeNs = int64(be.Uint64(b[33:]))
	s.SeenUnix = int64(be.Uint64(b[41:]))
	if b[0] == fileStateVersion {
		s.Run = be.Uint64(b[49:])
	}
	if n > 0 {
		s.Chunks = make([]chunk.ID, n)
		p := b[header:]
		for i := range s.Chunks {
			p = p[copy(s.Chunks[i][:], p):]
		}
	}
	return s, nil
}
