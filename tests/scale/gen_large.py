"""The source of the large generated Go module: hundreds of packages over real dependencies.

Why generated: a real repository of this size drags gigabytes of dependencies and changes under
us; this one is a few MB of our own code on pinned modules (Kubernetes' client-go, API types and
controller-runtime, the AWS SDK's EC2 and S3, x/tools' analysis framework, gRPC, OpenTelemetry,
the Prometheus client), laid out as layers so that every
package imports two or three of the layer below, and each uses one family of dependencies the
way real code does. gopls must type-check all of it (and those dependencies, from source) on a
cold start, which is what makes its first load take tens of seconds.

`write_module(root)` writes the files; `workspace.py` adds go.mod's requirements, tidies,
downloads and caches. Pure: the same constants give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

MODULE = "example.com/scale"
LAYERS = 16
WIDTH = 30
REQUIRE = {  # direct requirements, pinned; `go mod tidy` resolves the rest (deterministic MVS)
    "k8s.io/api": "v0.37.2",
    "k8s.io/apimachinery": "v0.37.2",
    "k8s.io/client-go": "v0.37.2",
    "golang.org/x/tools": "v0.53.0",
    "google.golang.org/grpc": "v1.85.0",
    "github.com/prometheus/client_golang": "v1.25.0",
    "github.com/aws/aws-sdk-go-v2": "v1.48.1",
    "github.com/aws/aws-sdk-go-v2/service/ec2": "v1.350.0",
    "github.com/aws/aws-sdk-go-v2/service/s3": "v1.116.1",
    "github.com/aws/smithy-go": "v1.28.11",  # v1.28.10 is not on the proxy (403)
    "sigs.k8s.io/controller-runtime": "v0.25.3",
    "go.opentelemetry.io/otel": "v1.47.0",
    "go.opentelemetry.io/otel/trace": "v1.47.0",
}
OPEN_FILE = "internal/app/app.go"  # the file the editor opens

THEMES = ("kube", "informer", "tools", "grpc", "prom", "web", "ec2", "s3", "ctrl", "otel")

THEME_IMPORTS = {
    "kube": ['"context"', '"fmt"', 'appsv1 "k8s.io/api/apps/v1"', 'corev1 "k8s.io/api/core/v1"',
             'metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"', '"k8s.io/client-go/kubernetes"'],
    "informer": ['"time"', 'corev1 "k8s.io/api/core/v1"', '"k8s.io/apimachinery/pkg/fields"',
                 '"k8s.io/client-go/kubernetes"', '"k8s.io/client-go/tools/cache"'],
    "tools": ['"go/ast"', '"golang.org/x/tools/go/analysis"',
              '"golang.org/x/tools/go/packages"'],
    "grpc": ['"context"', '"google.golang.org/grpc"',
             '"google.golang.org/grpc/credentials/insecure"', '"google.golang.org/grpc/health"',
             'healthpb "google.golang.org/grpc/health/grpc_health_v1"'],
    "prom": ['"time"', '"github.com/prometheus/client_golang/prometheus"'],
    "web": ['"encoding/json"', '"net/http"'],
    "ec2": ['"context"', '"github.com/aws/aws-sdk-go-v2/aws"',
            '"github.com/aws/aws-sdk-go-v2/service/ec2"',
            'ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"'],
    "s3": ['"context"', '"github.com/aws/aws-sdk-go-v2/aws"',
           '"github.com/aws/aws-sdk-go-v2/service/s3"'],
    "ctrl": ['"context"', 'corev1 "k8s.io/api/core/v1"', 'ctrl "sigs.k8s.io/controller-runtime"',
             '"sigs.k8s.io/controller-runtime/pkg/client"'],
    "otel": ['"context"', '"go.opentelemetry.io/otel"', '"go.opentelemetry.io/otel/attribute"',
             '"go.opentelemetry.io/otel/trace"'],
}

THEME_BODY = {
    "kube": '''
// Kube reads and scales the workloads of one namespace.
type Kube struct {
	Client    kubernetes.Interface
	Namespace string
	Selector  string
}

// Pods lists the namespace's pods that match the selector.
func (k *Kube) Pods(ctx context.Context) ([]corev1.Pod, error) {
	opts := metav1.ListOptions{LabelSelector: k.Selector}
	list, err := k.Client.CoreV1().Pods(k.Namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: list pods: %w", k.Namespace, err)
	}
	return list.Items, nil
}

// Scale sets a deployment's replicas.
func (k *Kube) Scale(ctx context.Context, name string, replicas int32) (*appsv1.Deployment, error) {
	d, err := k.Client.AppsV1().Deployments(k.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	d.Spec.Replicas = &replicas
	return k.Client.AppsV1().Deployments(k.Namespace).Update(ctx, d, metav1.UpdateOptions{})
}

// PodRecord summarises a pod's CPU requests.
func PodRecord(p *corev1.Pod) *Record {
	r := NewRecord(p.Name)
	for key, value := range p.Labels {
		r.Labels[key] = value
	}
	for _, c := range p.Spec.Containers {
		r.Add(float64(c.Resources.Requests.Cpu().MilliValue()))
	}
	return r
}
''',
    "informer": '''
// Informer watches the pods of one namespace and keeps a record of each.
func Informer(cs kubernetes.Interface, ns string,
	into *Store[string, *Record]) (cache.SharedIndexInformer, error) {
	lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "pods", ns, fields.Everything())
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 30*time.Second,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				into.Put(pod.Name, NewRecord(pod.Name))
			}
		},
		DeleteFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				into.Delete(pod.Name)
			}
		},
	})
	return inf, err
}
''',
    "tools": '''
// Analyzer counts the calls in each file.
var Analyzer = &analysis.Analyzer{Name: "PKG", Doc: "counts calls", Run: run}

func run(pass *analysis.Pass) (any, error) {
	calls := 0
	for _, f := range pass.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			if _, ok := n.(*ast.CallExpr); ok {
				calls++
			}
			return true
		})
	}
	return calls, nil
}

// Load lists the packages that match the patterns under dir.
func Load(dir string, patterns ...string) ([]*packages.Package, error) {
	mode := packages.NeedName | packages.NeedFiles | packages.NeedImports
	cfg := &packages.Config{Mode: mode, Dir: dir}
	return packages.Load(cfg, patterns...)
}
''',
    "grpc": '''
// Dial connects to a peer without TLS (inside the cluster).
func Dial(target string) (*grpc.ClientConn, error) {
	return grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// Serve returns a server that answers health checks.
func Serve() *grpc.Server {
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	return s
}

// Check asks a peer for its health.
func Check(ctx context.Context, cc *grpc.ClientConn) (string, error) {
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return "", err
	}
	return resp.GetStatus().String(), nil
}
''',
    "prom": '''
// Metrics counts and times what this package serves.
type Metrics struct {
	Requests *prometheus.CounterVec
	Latency  prometheus.Histogram
}

// NewMetrics registers the package's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "scale", Name: "PKG_requests_total", Help: "Requests served.",
		}, []string{"code"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "scale", Name: "PKG_seconds", Help: "Latency.",
			Buckets: prometheus.DefBuckets,
		}),
	}
	reg.MustRegister(m.Requests, m.Latency)
	return m
}

// Observe counts one request.
func (m *Metrics) Observe(code string, d time.Duration) {
	m.Requests.WithLabelValues(code).Inc()
	m.Latency.Observe(d.Seconds())
}
''',
    "web": '''
// Handler serves the records of a store as JSON.
func Handler(s *Store[string, *Record]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, ok := s.Get(r.URL.Query().Get("id"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": rec.ID, "sum": rec.Sum()})
	})
}
''',
    "ec2": '''
// Instances returns the ids of the instances that carry a tag.
func Instances(ctx context.Context, c *ec2.Client, tag string) ([]string, error) {
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{tag}}},
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	return ids, nil
}
''',
    "s3": '''
// Keys lists the first page of a bucket's keys.
func Keys(ctx context.Context, c *s3.Client, bucket string) ([]string, error) {
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(out.Contents))
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys, nil
}
''',
    "ctrl": '''
// Reconciler keeps a record of each pod it is told about.
type Reconciler struct {
	client.Client
	Records *Store[string, *Record]
}

// Reconcile records the pod named by the request.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var pod corev1.Pod
	if err := r.Get(ctx, req.NamespacedName, &pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	r.Records.Put(pod.Name, NewRecord(pod.Namespace+"/"+pod.Name))
	return ctrl.Result{}, nil
}

// Setup registers the reconciler with a manager.
func Setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&corev1.Pod{}).
		Complete(&Reconciler{Client: mgr.GetClient(), Records: NewStore[string, *Record]()})
}
''',
    "otel": '''
// Traced starts a span named after this package.
func Traced(ctx context.Context, name string) (context.Context, trace.Span) {
	return otel.Tracer("PKG").Start(ctx, name,
		trace.WithAttributes(attribute.String("package", "PKG")))
}
''',
}

TYPES = '''
// Record is one named series of values.
type Record struct {
	ID      string
	Created time.Time
	Labels  map[string]string
	PARENT
	mu     sync.Mutex
	values []float64
}

// NewRecord returns an empty record.
func NewRecord(id string) *Record {
	return &Record{ID: id, Created: time.Now(), Labels: map[string]string{}}
}

// Add appends a value.
func (r *Record) Add(v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values = append(r.values, v)
}

// Sum adds the values up.
func (r *Record) Sum() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0.0
	for _, v := range r.values {
		total += v
	}
	return total
}

func (r *Record) String() string {
	return fmt.Sprintf("%s(%d values)", r.ID, len(r.values))
}

// Store is a map safe for concurrent use.
type Store[K cmp.Ordered, V any] struct {
	mu    sync.RWMutex
	items map[K]V
}

// NewStore returns an empty store.
func NewStore[K cmp.Ordered, V any]() *Store[K, V] {
	return &Store[K, V]{items: map[K]V{}}
}

// Get returns the value under k.
func (s *Store[K, V]) Get(k K) (V, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.items[k]
	return v, ok
}

// Put stores v under k.
func (s *Store[K, V]) Put(k K, v V) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[k] = v
}

// Delete removes k.
func (s *Store[K, V]) Delete(k K) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, k)
}

// Keys returns the keys in order.
func (s *Store[K, V]) Keys() []K {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.items))
}
'''

CHAIN = '''
// Chain names this package and, depth levels down, the packages it builds on.
func Chain(depth int) []string {
	out := []string{"PKG"}
	if depth <= 0 {
		return out
	}
CALLS	return out
}

// Describe renders a record with its parents.
func Describe(r *Record) string {
	var b strings.Builder
	b.WriteString(r.String())
PARENTCALL	return b.String()
}
'''

TEST = '''package PKG

import "testing"

func TestRecordSum(t *testing.T) {
	r := NewRecord("t")
	r.Add(1)
	r.Add(2)
	if got := r.Sum(); got != 3 {
		t.Fatalf("Sum() = %v, want 3", got)
	}
	if got := Chain(0); len(got) != 1 {
		t.Fatalf("Chain(0) = %v", got)
	}
}
'''

APP = '''// Package app is the service's entry point: the file the scale tests open in the editor.
package app

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

IMPORTS)

// App watches one namespace.
type App struct {
	Client    kubernetes.Interface
	Namespace string
}

// Pending returns the pods of the namespace that are not running yet.
func (a *App) Pending(ctx context.Context) ([]corev1.Pod, error) {
	list, err := a.Client.CoreV1().Pods(a.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", a.Namespace, err)
	}
	var pending []corev1.Pod
	for _, p := range list.Items {
		if p.Status.Phase != corev1.PodRunning {
			pending = append(pending, p)
		}
	}
	return pending, nil
}

// Layers names every package the app is built on.
func (a *App) Layers() []string {
	var out []string
CALLS	return out
}
'''

MAIN = '''// Command scale runs the app.
package main

import (
	"fmt"

	"example.com/scale/internal/app"
)

func main() {
	a := &app.App{Namespace: "default"}
	fmt.Println(len(a.Layers()))
}
'''


def pkg_name(layer: int, index: int) -> str:
    return f"l{layer}p{index:02d}"


def pkg_path(layer: int, index: int) -> str:
    return f"internal/l{layer}/p{index:02d}"


def lower(layer: int, index: int) -> list[int]:
    """The packages of the layer below that this one imports (deterministic, 2 or 3)."""
    if layer == 0:
        return []
    picks = [index, (index + 7) % WIDTH]
    if index % 3 == 0:
        picks.append((index * 3 + 1) % WIDTH)
    return sorted(set(picks))


def package_files(layer: int, index: int) -> dict[str, str]:
    name = pkg_name(layer, index)
    theme = THEMES[(layer + index) % len(THEMES)]
    below = lower(layer, index)
    below_imports = [f'{pkg_name(layer - 1, j)} "{MODULE}/{pkg_path(layer - 1, j)}"'
                     for j in below]
    parent = (f"Parent *{pkg_name(layer - 1, below[0])}.Record" if below
              else "Parent *Record")
    types = (f"package {name}\n\nimport (\n\t\"cmp\"\n\t\"fmt\"\n\t\"maps\"\n\t\"slices\"\n"
             f"\t\"sync\"\n\t\"time\"\n" + "".join(f"\t{i}\n" for i in below_imports[:1])
             + ")\n" + TYPES.replace("PARENT", parent))
    calls = "".join(f"\tout = append(out, {pkg_name(layer - 1, j)}.Chain(depth-1)...)\n"
                    for j in below)
    parent_call = (f"\tif r.Parent != nil {{\n\t\tb.WriteString(\" <- \")\n"
                   f"\t\tb.WriteString({pkg_name(layer - 1, below[0])}.Describe(r.Parent))\n\t}}\n"
                   if below else "")
    chain = (f"package {name}\n\nimport (\n\t\"strings\"\n"
             + "".join(f"\t{i}\n" for i in below_imports) + ")\n"
             + CHAIN.replace("PKG", name).replace("CALLS", calls)
             .replace("PARENTCALL", parent_call))
    ops = (f"package {name}\n\nimport (\n" + "".join(f"\t{i}\n" for i in THEME_IMPORTS[theme])
           + ")\n" + THEME_BODY[theme].replace("PKG", name))
    return {"types.go": types, "chain.go": chain, f"{theme}.go": ops,
            "record_test.go": TEST.replace("PKG", name)}


def app_file() -> str:
    top = LAYERS - 1
    picks = range(WIDTH)  # all of the top layer: hovering in app waits for the whole workspace
    imports = "".join(f'\t{pkg_name(top, j)} "{MODULE}/{pkg_path(top, j)}"\n' for j in picks)
    calls = "".join(f"\tout = append(out, {pkg_name(top, j)}.Chain({LAYERS})...)\n"
                    for j in picks)
    return APP.replace("IMPORTS", imports).replace("CALLS", calls)


def write_module(root: Path) -> int:
    """Write every package's files under `root` (go.mod excepted); the number of packages."""
    count = 0
    for layer in range(LAYERS):
        for index in range(WIDTH):
            directory = root / pkg_path(layer, index)
            directory.mkdir(parents=True, exist_ok=True)
            for name, text in package_files(layer, index).items():
                (directory / name).write_text(text)
            count += 1
    (root / "internal" / "app").mkdir(parents=True, exist_ok=True)
    (root / OPEN_FILE).write_text(app_file())
    (root / "cmd" / "scale").mkdir(parents=True, exist_ok=True)
    (root / "cmd" / "scale" / "main.go").write_text(MAIN)
    return count + 2
