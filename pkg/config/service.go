package config

import "sort"

// Primary returns the region whose role is primary, or nil (a validated service has one).
func (s *Service) Primary() *Region {
	for i := range s.Regions {
		if s.Regions[i].Role == "primary" {
			return &s.Regions[i]
		}
	}
	return nil
}

// Region returns the region named name, or nil.
func (s *Service) Region(name string) *Region {
	for i := range s.Regions {
		if s.Regions[i].Name == name {
			return &s.Regions[i]
		}
	}
	return nil
}

// Standbys returns copies of the standby regions, most preferred first: by priority (lower
// first), then by name.
func (s *Service) Standbys() []Region {
	var out []Region
	for _, r := range s.Regions {
		if r.Role == "standby" {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority < out[j].Priority
		}
		return out[i].Name < out[j].Name
	})
	return out
}
