package repo

import (
	"fmt"
	"sort"
	"strings"
)

// domainSnapshotName lets `latest:NAME` name a domain: domain backups are
// recorded under the source HOST:domain:NAME, and operators type the
// domain's name. A source really named NAME wins; the rewrite happens
// only when exactly one domain source matches, and several hosts with a
// domain of that name are an error that lists them. Other names pass
// unchanged.
func domainSnapshotName(sns []*Snapshot, name string) (string, error) {
	rest, ok := strings.CutPrefix(name, "latest:")
	if !ok || rest == "" {
		return name, nil
	}
	// A generation suffix (latest:SOURCE~N) stays with the source.
	source, gen := rest, ""
	if i := strings.LastIndexByte(rest, '~'); i > 0 {
		source, gen = rest[:i], rest[i:]
	}
	var matches []string
	seen := map[string]bool{}
	for _, sn := range sns {
		if sn.Source == source || sn.Source == rest {
			return name, nil
		}
		if strings.HasSuffix(sn.Source, ":domain:"+source) && !seen[sn.Source] {
			seen[sn.Source] = true
			matches = append(matches, sn.Source)
		}
	}
	switch len(matches) {
	case 0:
		return name, nil
	case 1:
		return "latest:" + matches[0] + gen, nil
	}
	sort.Strings(matches)
	return "", fmt.Errorf("%q matches the domain backups of several hosts: name one of latest:%s", name, strings.Join(matches, ", latest:"))
}
