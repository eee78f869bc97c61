package local

import (
	"testing"

	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Create(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
