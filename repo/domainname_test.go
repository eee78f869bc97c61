package repo

import (
	"strings"
	"testing"
)

func TestDomainSnapshotName(t *testing.T) {
	sns := []*Snapshot{{Source: "hv1:domain:db01"}, {Source: "hv1:domain:web"}, {Source: "hv2:domain:web"}, {Source: "etc"}, {Source: "hv1:domain:etc"}}
	for in, want := range map[string]string{
		"latest:db01":            "latest:hv1:domain:db01",
		"latest:db01~2":          "latest:hv1:domain:db01~2",
		"latest:etc":             "latest:etc", // a source of that very name wins
		"latest:nope":            "latest:nope",
		"latest":                 "latest",
		"3f9a1c2e":               "3f9a1c2e",
		"latest:hv1:domain:db01": "latest:hv1:domain:db01",
	} {
		got, err := domainSnapshotName(sns, in)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	_, err := domainSnapshotName(sns, "latest:web")
	if err == nil || !strings.Contains(err.Error(), "latest:hv1:domain:web, latest:hv2:domain:web") {
		t.Fatalf("ambiguous name: %v", err)
	}
}
