package drill

import "github.com/drwatchd/drwatchd/pkg/api"

// HTTPClient drives a running daemon through its admin API: the drill's production path.
type HTTPClient = api.Client
