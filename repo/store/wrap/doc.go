// Package wrap holds small store.Store wrappers for cross-cutting concerns.
// Each does one thing and returns a store.Store, so they stack:
//
//	s := wrap.Metrics(wrap.Retry(wrap.Limit(backend, 16), wrap.RetryOptions{}))
//
// Order matters. Put Limit innermost, so a slot is held only while a request
// is on the wire and never during a retry's back-off sleep; Retry outside
// it; Metrics outermost to count what callers asked for, or just inside
// Retry to count every attempt. Faulty goes between the backend and Retry
// in tests, to check that the stack above copes with failures.
package wrap

// Op names a store operation, for fault predicates and metrics.
type Op string

// The store operations.
const (
	OpPut    Op = "put"
	OpGet    Op = "get"
	OpStat   Op = "stat"
	OpList   Op = "list"
	OpDelete Op = "delete"
)

const numOps = 5

// allOps lists the operations in a fixed order.
func allOps() [numOps]Op { return [numOps]Op{OpPut, OpGet, OpStat, OpList, OpDelete} }
