package central

import (
	"math"
	"net/http"
	"slices"
	"sort"
)

// rolesSelfTest may see self-test alerts (kind system.selftest); for
// everyone else they are not alarms and stay out of the alert listing and
// the console feed.
var rolesSelfTest = []string{RoleInstaller, RoleAdmin}

// seesSelfTests reports whether the request's principal may see
// self-test alerts.
func seesSelfTests(r *http.Request) bool {
	p := principalOf(r)
	return p != nil && slices.Contains(rolesSelfTest, p.Role)
}

// listOptions reads the alert listing's kind and sort parameters into q:
// kind=K lists one kind (kind=system.selftest only for installers and
// admins: 403 otherwise); guards, supervisors and police never get
// self-tests. It reports whether sort=priority was asked (sort=seq, the
// default, keeps creation order).
func listOptions(w http.ResponseWriter, r *http.Request, q *AlertQuery) (byPriority, ok bool) {
	q.Kind = r.URL.Query().Get("kind")
	if !seesSelfTests(r) {
		if q.Kind == KindSelfTest {
			writeError(w, http.StatusForbidden, "kind", "self-tests are for installers and admins")
			return false, false
		}
		q.HideSelfTest = true
	}
	switch r.URL.Query().Get("sort") {
	case "", "seq":
		return false, true
	case "priority":
		return true, true
	}
	writeError(w, http.StatusBadRequest, "sort", "sort must be seq (default) or priority")
	return false, false
}

// sortByUrgency orders alerts for a guard: open ones first, by colour
// (red first), then priority (1 first), then newest first; resolved ones
// after them, newest first.
func sortByUrgency(recs []Record) {
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := &recs[i], &recs[j]
		if oa, ob := open(a.State), open(b.State); oa != ob {
			return oa
		}
		if open(a.State) {
			if ra, rb := a.Severity.Rank(), b.Severity.Rank(); ra != rb {
				return ra > rb
			}
			if a.Priority != b.Priority {
				return a.Priority < b.Priority
			}
		}
		return a.Seq > b.Seq
	})
}

// historyOrder reads the listing's order (asc, the default, or desc) and,
// for desc, before= (the next older page's cursor; 0 or absent: from the
// newest); before without order=desc is refused.
func historyOrder(w http.ResponseWriter, r *http.Request, q *AlertQuery) bool {
	switch r.URL.Query().Get("order") {
	case "", "asc":
		if r.URL.Query().Has("before") {
			writeError(w, http.StatusBadRequest, "before", "before pages newest first: use it with order=desc")
			return false
		}
		return true
	case "desc":
		q.Desc = true
		var ok bool
		q.Before, ok = queryUint(w, r, "before", 0, 0, math.MaxUint64)
		return ok
	}
	writeError(w, http.StatusBadRequest, "order", "order must be asc (default) or desc")
	return false
}
