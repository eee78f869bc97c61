package bench

import (
	"math/rand/v2"
	"strconv"
)

// words is the vocabulary text is drawn from. A few hundred words picked at
// random compress about as well as configuration files and logs (zstd's
// fastest level gets roughly 3:1) without repeating long runs that
// content-defined chunking would deduplicate. It is fixed, not seeded, so
// every dataset speaks the same language.
type words [][]byte

func newWords() words {
	syll := []string{"ka", "lo", "mi", "ne", "ru", "ta", "si", "po", "de", "va", "zu", "en", "or", "il", "an", "ex"}
	rng := rand.New(rand.NewPCG(7, 7))
	out := make(words, 512)
	for i := range out {
		var w []byte
		for n := 1 + rng.IntN(4); n > 0; n-- {
			w = append(w, syll[rng.IntN(len(syll))]...)
		}
		out[i] = w
	}
	return out
}

// appendText appends exactly n bytes of word lines to b.
func (vocabulary words) appendText(b []byte, rng *rand.Rand, n int) []byte {
	end := len(b) + n
	col := 0
	for len(b) < end {
		w := vocabulary[rng.IntN(len(vocabulary))]
		switch {
		case col > 60+rng.IntN(40):
			b = append(b, '\n')
			col = 0
		case col > 0:
			if rng.IntN(8) == 0 {
				b = append(b, " = "...)
				col += 3
			} else {
				b = append(b, ' ')
				col++
			}
		}
		b = append(b, w...)
		col += len(w)
	}
	return b[:end]
}

// appendLogLines appends exactly n bytes of nearly identical log lines,
// the most compressible content a backup meets.
func appendLogLines(b []byte, line *uint64, n int) []byte {
	end := len(b) + n
	for len(b) < end {
		*line++
		b = append(b, "2026-03-01T04:00:00Z INFO scheduler: job "...)
		b = strconv.AppendUint(b, *line, 10)
		b = append(b, " finished, status=0, queue=batch\n"...)
	}
	return b[:end]
}
