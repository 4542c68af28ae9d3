package sim

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/drwatchd/drwatchd/pkg/clock"
	"github.com/drwatchd/drwatchd/pkg/sim/fakecompute"
	"github.com/drwatchd/drwatchd/pkg/sim/fakemon"
	"github.com/drwatchd/drwatchd/pkg/sim/fakevertex"
)

// Env is a whole simulated cloud on loopback: the fakes, their servers, a World driving them, and
// the probe endpoint.
type Env struct {
	World   *World
	Mon     *fakemon.Server
	Vertex  *fakevertex.Server
	Compute *fakecompute.Server
	GCS     *fakestorage.Server

	// GRPCAddr serves Monitoring, Vertex AI EndpointService and Operations (host:port).
	GRPCAddr string
	// ComputeURL is the Compute REST base URL, GCSURL the fake GCS server's.
	ComputeURL, GCSURL string
	// ProbeBase is the probe server's base URL: probes are ProbeBase+"/probe/{service}/{region}".
	ProbeBase string

	grpc    *grpc.Server
	compute *httptest.Server
	probes  *httptest.Server
}

// Start starts every fake on 127.0.0.1 and builds the World from spec on them. The fakes run on
// the world's virtual clock. Close stops everything; ctx only bounds the start.
func Start(ctx context.Context, spec Spec) (*Env, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("sim spec: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	spec = spec.withDefaults()
	e := &Env{}
	clk := clock.NewFake(spec.Start)
	e.Mon = fakemon.New()
	e.Vertex = fakevertex.New(clk)
	e.Compute = fakecompute.New(clk)

	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sim: listen grpc: %w", err)
	}
	e.grpc = grpc.NewServer()
	e.Mon.Register(e.grpc)
	e.Vertex.Register(e.grpc)
	go func() { _ = e.grpc.Serve(lis) }()
	e.GRPCAddr = lis.Addr().String()

	e.compute = httptest.NewServer(e.Compute.Handler())
	e.ComputeURL = e.compute.URL

	e.GCS, err = fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: discard{},
	})
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("sim: start fake gcs: %w", err)
	}
	e.GCSURL = e.GCS.URL()

	e.World, err = New(spec, Fakes{Mon: e.Mon, Vertex: e.Vertex, Compute: e.Compute, GCS: e.GCS, Clock: clk})
	if err != nil {
		e.Close()
		return nil, err
	}
	e.probes = httptest.NewServer(e.World.ProbeHandler())
	e.ProbeBase = e.probes.URL
	return e, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// grpcOptions point a gRPC client at the Env's server: plaintext, no credentials.
func (e *Env) grpcOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(e.GRPCAddr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// MonitoringOptions are the client options of monitoring.NewMetricClient.
func (e *Env) MonitoringOptions() []option.ClientOption { return e.grpcOptions() }

// VertexOptions are the client options of aiplatform.NewEndpointClient for region (every region
// is served by the same server; in production it is region+"-aiplatform.googleapis.com:443").
func (e *Env) VertexOptions(region string) []option.ClientOption {
	_ = region
	return e.grpcOptions()
}

// ComputeOptions are the client options of compute.NewUrlMapsRESTClient (and
// NewGlobalOperationsRESTClient).
func (e *Env) ComputeOptions() []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint(e.ComputeURL), option.WithoutAuthentication()}
}

// StorageOptions are the client options of storage.NewClient: the JSON API over HTTP, reads
// included (storage.WithJSONReads: the XML read path does not reach the fake).
func (e *Env) StorageOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(e.GCSURL + "/storage/v1/"),
		option.WithoutAuthentication(),
		storage.WithJSONReads(),
	}
}

// Close stops every server. It is safe to call on a partly started Env.
func (e *Env) Close() {
	if e.probes != nil {
		e.probes.Close()
	}
	if e.grpc != nil {
		e.grpc.Stop()
	}
	if e.compute != nil {
		e.compute.Close()
	}
	if e.GCS != nil {
		e.GCS.Stop()
	}
}
