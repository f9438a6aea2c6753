package central

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/wire"
)

// Site levels, top down. A site's ID is its path from the township, e.g.
// "lotus/north/wall/gate-a"; an edge's site_id is its entrance's path.
const (
	LevelTownship = "township"
	LevelVillage  = "village"
	LevelZone     = "zone"
	LevelEntrance = "entrance"
	// LevelSite is a site ID that edges used but central.yaml does not place.
	LevelSite = "site"
)

// TownshipConfig is the top of the site hierarchy in central.yaml.
type TownshipConfig struct {
	ID       string          `yaml:"id"`
	Name     string          `yaml:"name,omitempty"`
	Villages []VillageConfig `yaml:"villages"`
}

// VillageConfig is one village.
type VillageConfig struct {
	ID    string       `yaml:"id"`
	Name  string       `yaml:"name,omitempty"`
	Zones []ZoneConfig `yaml:"zones"`
}

// ZoneConfig is a part of a village's perimeter (a wall, a side).
type ZoneConfig struct {
	ID        string           `yaml:"id"`
	Name      string           `yaml:"name,omitempty"`
	Entrances []EntranceConfig `yaml:"entrances"`
}

// EntranceConfig is one entrance, watched by one edge.
type EntranceConfig struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name,omitempty"`
	// Cameras and Gates are deprecated: the edge names its devices in
	// edge.yaml and reports them (devices.go). Still read, with a warning
	// at start; a name here is used only for a device its edge has not
	// named yet (an edge older than names in the heartbeat).
	Cameras []DeviceConfig `yaml:"cameras,omitempty"`
	Gates   []DeviceConfig `yaml:"gates,omitempty"`
}

// DeviceConfig is a camera or gate under an entrance in central.yaml
// (deprecated, see EntranceConfig); its live state comes from the edge.
type DeviceConfig struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name,omitempty"`
}

var siteIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// siteNode is one place in the hierarchy.
type siteNode struct {
	ID       string // path
	Name     string
	Level    string
	Parent   string
	Children []string
	Cameras  []DeviceConfig
	Gates    []DeviceConfig
}

// siteTree is the configured hierarchy plus any site an edge reports that
// the config does not place. It is built once from the config and then
// owned by the writer goroutine, which adds unplaced sites as they appear.
type siteTree struct {
	nodes map[string]*siteNode
	roots []string
}

// buildSiteTree checks the township config and returns its tree.
func buildSiteTree(t *TownshipConfig) (*siteTree, []config.FieldError) {
	tree := &siteTree{nodes: map[string]*siteNode{}}
	var errs []config.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, config.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	node := func(field, parent, id, name, level string) (*siteNode, bool) {
		if !siteIDPattern.MatchString(id) {
			add(field+".id", "must be 1-63 lower-case letters, digits, '.', '_' or '-'")
			return nil, false
		}
		path := id
		if parent != "" {
			path = parent + "/" + id
		}
		if _, dup := tree.nodes[path]; dup {
			add(field+".id", "%q is used twice under %q", id, parent)
			return nil, false
		}
		n := &siteNode{ID: path, Name: name, Level: level, Parent: parent}
		tree.nodes[path] = n
		if parent == "" {
			tree.roots = append(tree.roots, path)
		} else {
			tree.nodes[parent].Children = append(tree.nodes[parent].Children, path)
		}
		return n, true
	}
	top, ok := node("township", "", t.ID, t.Name, LevelTownship)
	if !ok {
		return tree, errs
	}
	for vi, v := range t.Villages {
		vf := fmt.Sprintf("township.villages[%d]", vi)
		vn, ok := node(vf, top.ID, v.ID, v.Name, LevelVillage)
		if !ok {
			continue
		}
		for zi, z := range v.Zones {
			zf := fmt.Sprintf("%s.zones[%d]", vf, zi)
			zn, ok := node(zf, vn.ID, z.ID, z.Name, LevelZone)
			if !ok {
				continue
			}
			for ei, e := range z.Entrances {
				ef := fmt.Sprintf("%s.entrances[%d]", zf, ei)
				en, ok := node(ef, zn.ID, e.ID, e.Name, LevelEntrance)
				if !ok {
					continue
				}
				en.Cameras, en.Gates = e.Cameras, e.Gates
				seen := map[string]bool{}
				for di, d := range slices.Concat(e.Cameras, e.Gates) {
					if d.ID == "" || seen[d.ID] {
						add(fmt.Sprintf("%s.devices[%d]", ef, di), "camera and gate ids must be set and unique per entrance (%q)", d.ID)
					}
					seen[d.ID] = true
				}
			}
		}
	}
	return tree, errs
}

func (t *siteTree) isEntrance(path string) bool {
	n, ok := t.nodes[path]
	return ok && n.Level == LevelEntrance
}

// ensure adds a site an edge reported but the config does not place, with
// its path prefixes, so its alerts still colour something.
func (t *siteTree) ensure(path string) {
	if path == "" {
		return
	}
	if _, ok := t.nodes[path]; ok {
		return
	}
	parent := ""
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		parent = path[:i]
		t.ensure(parent)
	}
	t.nodes[path] = &siteNode{ID: path, Name: path, Level: LevelSite, Parent: parent}
	if parent == "" {
		t.roots = append(t.roots, path)
	} else {
		t.nodes[parent].Children = append(t.nodes[parent].Children, path)
	}
}

// openCounts are a site's open (unresolved) alerts by severity rank.
type openCounts [4]int

// colour is the worst open severity; a site with nothing open is green.
func (c openCounts) colour() wire.Severity {
	switch {
	case c[3] > 0:
		return wire.Red
	case c[2] > 0:
		return wire.Yellow
	}
	return wire.Green
}

// siteColours keeps every site's open-alert counts, its own and its
// descendants', so a colour is read in O(1) and updated in O(depth).
// Owned by the writer goroutine.
type siteColours struct {
	tree   *siteTree
	counts map[string]*openCounts
}

func newSiteColours(tree *siteTree) *siteColours {
	return &siteColours{tree: tree, counts: map[string]*openCounts{}}
}

// move records an alert at site leaving rank from (0: it was not open) and
// entering rank to (0: it is no longer open), and reports the sites whose
// colour changed.
func (s *siteColours) move(site string, from, to int, changed map[string]bool) {
	if from == to || site == "" {
		return
	}
	s.tree.ensure(site)
	for p := site; p != ""; p = s.tree.nodes[p].Parent {
		c := s.counts[p]
		if c == nil {
			c = &openCounts{}
			s.counts[p] = c
		}
		before := c.colour()
		if from > 0 {
			c[from]--
		}
		if to > 0 {
			c[to]++
		}
		if c.colour() != before {
			changed[p] = true
		}
	}
}

// SiteColour is one site's colour and open alerts, as consoles and the API
// see it.
type SiteColour struct {
	ID     string        `json:"id"`
	Colour wire.Severity `json:"colour"`
	Open   OpenCounts    `json:"open"`
}

// OpenCounts are open alerts by severity.
type OpenCounts struct {
	Red    int `json:"red"`
	Yellow int `json:"yellow"`
	Green  int `json:"green"`
}

func (s *siteColours) get(id string) SiteColour {
	c := openCounts{}
	if p := s.counts[id]; p != nil {
		c = *p
	}
	return SiteColour{ID: id, Colour: c.colour(), Open: OpenCounts{Red: c[3], Yellow: c[2], Green: c[1]}}
}

// all lists every site's colour, parents before children.
func (s *siteColours) all() []SiteColour {
	var out []SiteColour
	var walk func(ids []string)
	walk = func(ids []string) {
		for _, id := range ids {
			out = append(out, s.get(id))
			walk(s.tree.nodes[id].Children)
		}
	}
	walk(s.tree.roots)
	return out
}
