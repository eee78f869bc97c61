package fsmeta

import (
	"os/user"
	"strconv"
	"sync"
)

// NameCache resolves numeric owners to names and back, remembering every
// answer (including "no such user") because a tree walk asks about the same
// few IDs millions of times. It is safe for concurrent use; the zero value
// is ready.
type NameCache struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
	uids   map[string]idResult
	gids   map[string]idResult
}

type idResult struct {
	id uint32
	ok bool
}

// User returns the name of uid on this host, or "" if it has none.
func (c *NameCache) User(uid uint32) string {
	return c.name(&c.users, uid, func(s string) (string, error) {
		u, err := user.LookupId(s)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	})
}

// Group returns the name of gid on this host, or "" if it has none.
func (c *NameCache) Group(gid uint32) string {
	return c.name(&c.groups, gid, func(s string) (string, error) {
		g, err := user.LookupGroupId(s)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})
}

// UID returns the ID of the named user on this host.
func (c *NameCache) UID(name string) (uint32, bool) {
	return c.id(&c.uids, name, func(s string) (string, error) {
		u, err := user.Lookup(s)
		if err != nil {
			return "", err
		}
		return u.Uid, nil
	})
}

// GID returns the ID of the named group on this host.
func (c *NameCache) GID(name string) (uint32, bool) {
	return c.id(&c.gids, name, func(s string) (string, error) {
		g, err := user.LookupGroup(s)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	})
}

// The lookups run under the lock: they are rare once the cache is warm, and
// serialising them keeps concurrent walkers from reading /etc/passwd in
// parallel for the same ID.
func (c *NameCache) name(m *map[uint32]string, id uint32, lookup func(string) (string, error)) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := (*m)[id]; ok {
		return n
	}
	n, err := lookup(strconv.FormatUint(uint64(id), 10))
	if err != nil {
		n = ""
	}
	if *m == nil {
		*m = make(map[uint32]string)
	}
	(*m)[id] = n
	return n
}

func (c *NameCache) id(m *map[string]idResult, name string, lookup func(string) (string, error)) (uint32, bool) {
	if name == "" {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := (*m)[name]; ok {
		return r.id, r.ok
	}
	var r idResult
	if s, err := lookup(name); err == nil {
		if v, err := strconv.ParseUint(s, 10, 32); err == nil {
			r = idResult{id: uint32(v), ok: true}
		}
	}
	if *m == nil {
		*m = make(map[string]idResult)
	}
	(*m)[name] = r
	return r.id, r.ok
}
