// Package deploy_test checks the deployment files: every Kubernetes
// manifest an overlay builds decodes strictly into its typed object and
// refers only to things that exist (labels, ports, scale targets, config
// maps, secrets, Warden's environment variables, asynq's queue keys), and
// the compose file loads and validates with the compose library.
package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/wardenlab/warden/config"
)

// scaledObject and triggerAuth are KEDA's keda.sh/v1alpha1 kinds, with
// the fields of its CRDs that Warden's manifests may use (KEDA's own Go
// module would pull in a controller runtime).
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int32 `json:"cooldownPeriod,omitempty"`
		MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
		Triggers        []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind,omitempty"`
			} `json:"authenticationRef,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

type triggerAuth struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef"`
	} `json:"spec"`
}

// cluster is what one overlay builds, by kind.
type cluster struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
	configMaps  map[string]corev1.ConfigMap
	hpas        []autoscalingv2.HorizontalPodAutoscaler
	pdbs        []policyv1.PodDisruptionBudget
	jobs        []batchv1.Job
	scaled      []scaledObject
	auths       map[string]triggerAuth
}

// strict decodes one manifest, refusing fields its type does not have.
func strict(t *testing.T, doc []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
}

func build(t *testing.T, overlay string) cluster {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join("k8s", "overlays", overlay))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", overlay, err)
	}
	c := cluster{configMaps: map[string]corev1.ConfigMap{}, auths: map[string]triggerAuth{}}
	for _, r := range m.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		switch k := r.GetApiVersion() + " " + r.GetKind(); k {
		case "apps/v1 Deployment":
			var d appsv1.Deployment
			strict(t, doc, &d)
			c.deployments = append(c.deployments, d)
		case "v1 Service":
			var s corev1.Service
			strict(t, doc, &s)
			c.services = append(c.services, s)
		case "v1 ConfigMap":
			var cm corev1.ConfigMap
			strict(t, doc, &cm)
			c.configMaps[cm.Name] = cm
		case "autoscaling/v2 HorizontalPodAutoscaler":
			var h autoscalingv2.HorizontalPodAutoscaler
			strict(t, doc, &h)
			c.hpas = append(c.hpas, h)
		case "policy/v1 PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			strict(t, doc, &p)
			c.pdbs = append(c.pdbs, p)
		case "batch/v1 Job":
			var j batchv1.Job
			strict(t, doc, &j)
			c.jobs = append(c.jobs, j)
		case "keda.sh/v1alpha1 ScaledObject":
			var s scaledObject
			strict(t, doc, &s)
			c.scaled = append(c.scaled, s)
		case "keda.sh/v1alpha1 TriggerAuthentication":
			var a triggerAuth
			strict(t, doc, &a)
			c.auths[a.Name] = a
		default:
			t.Errorf("%s: unexpected kind %s", overlay, k)
		}
	}
	return c
}

// exampleSecrets are the Secrets of base/secret.example.yaml, which the
// operator creates outside the kustomization: name → keys.
func exampleSecrets(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("k8s", "base", "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var s corev1.Secret
		strict(t, []byte(doc), &s)
		for k := range s.StringData {
			out[s.Name] = append(out[s.Name], k)
		}
	}
	return out
}

// nonWarden are the variables Warden reads that are not its own: the S3
// SDK's standard credentials.
var nonWarden = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}

func checkVariable(t *testing.T, where, name string) {
	t.Helper()
	if !slices.Contains(config.Variables(), name) && !slices.Contains(nonWarden, name) {
		t.Errorf("%s sets %s, which Warden does not read", where, name)
	}
}

// podEnv is the environment a container sees (config maps, literal env;
// secrets by name only) and loads it as Warden would.
func podEnv(t *testing.T, c cluster, secrets map[string][]string, where string, ctr corev1.Container) config.Config {
	t.Helper()
	env := map[string]string{}
	for _, from := range ctr.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := c.configMaps[from.ConfigMapRef.Name]
			if !ok {
				t.Errorf("%s: config map %q does not exist", where, from.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				checkVariable(t, where+" (config map "+cm.Name+")", k)
				env[k] = v
			}
		case from.SecretRef != nil:
			keys, ok := secrets[from.SecretRef.Name]
			if !ok {
				t.Errorf("%s: secret %q is not in secret.example.yaml", where, from.SecretRef.Name)
			}
			for _, k := range keys {
				checkVariable(t, where+" (secret "+from.SecretRef.Name+")", k)
			}
		}
	}
	for _, e := range ctr.Env {
		checkVariable(t, where, e.Name)
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	for _, k := range config.Variables() {
		t.Setenv(k, env[k])
	}
	// The secret key comes from the Secret; any valid one will do here.
	t.Setenv("WARDEN_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	cfg, err := config.Load()
	if err != nil {
		t.Errorf("%s: Warden refuses its environment: %v", where, err)
	}
	return cfg
}

func selects(sel map[string]string, d appsv1.Deployment) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(d.Spec.Template.Labels))
}

func deploymentNamed(c cluster, name string) *appsv1.Deployment {
	for i := range c.deployments {
		if c.deployments[i].Name == name {
			return &c.deployments[i]
		}
	}
	return nil
}

func TestKubernetesOverlays(t *testing.T) {
	secrets := exampleSecrets(t)
	for _, overlay := range []string{"dev", "production"} {
		t.Run(overlay, func(t *testing.T) {
			c := build(t, overlay)
			checkWorkloads(t, c, secrets)
			checkServices(t, c)
			checkScaling(t, c, secrets)
			gpu := deploymentNamed(c, "warden-worker-gpu")
			if (gpu != nil) != (overlay == "production") {
				t.Errorf("GPU worker present = %v in %s", gpu != nil, overlay)
			}
			if len(c.jobs) != 1 || !slices.Equal(c.jobs[0].Spec.Template.Spec.Containers[0].Args, []string{"migrate"}) {
				t.Errorf("want one migration Job running `warden migrate`, have %d", len(c.jobs))
			}
		})
	}
}

// checkWorkloads: selectors select their pods; images were pinned by the
// overlay; environments name real variables and load; grace periods
// exceed the shutdown timeout; only the GPU worker asks for a GPU, and it
// can be scheduled on a GPU node only.
func checkWorkloads(t *testing.T, c cluster, secrets map[string][]string) {
	for _, d := range c.deployments {
		if d.Spec.Selector == nil || !selects(d.Spec.Selector.MatchLabels, d) {
			t.Errorf("%s: selector does not match its pod template", d.Name)
		}
		for _, ctr := range d.Spec.Template.Spec.Containers {
			where := d.Name + "/" + ctr.Name
			if !strings.Contains(ctr.Image, "/") {
				t.Errorf("%s: image %q was not pinned by the overlay", where, ctr.Image)
			}
			cfg := podEnv(t, c, secrets, where, ctr)
			grace := int64(30) // Kubernetes' default
			if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
				grace = *g
			}
			if time.Duration(grace)*time.Second <= cfg.ShutdownTimeout {
				t.Errorf("%s: terminationGracePeriodSeconds %d is not above WARDEN_SHUTDOWN_TIMEOUT %v", where, grace, cfg.ShutdownTimeout)
			}
			gpus := ctr.Resources.Limits[corev1.ResourceName("nvidia.com/gpu")]
			isGPU := d.Name == "warden-worker-gpu"
			if isGPU != (gpus.Cmp(resource.MustParse("1")) >= 0) {
				t.Errorf("%s: nvidia.com/gpu limit %s", where, gpus.String())
			}
			if isGPU && (d.Spec.Template.Spec.NodeSelector == nil || len(d.Spec.Template.Spec.Tolerations) == 0) {
				t.Errorf("%s: a GPU pod needs a node selector and a toleration for GPU nodes", where)
			}
			if strings.HasPrefix(d.Name, "warden-worker") && !slices.Equal(ctr.Args, []string{"worker"}) {
				t.Errorf("%s: runs %v", where, ctr.Args)
			}
		}
	}
}

// checkServices: every Service selects a Deployment and targets a port its
// containers declare; every PDB protects a Deployment.
func checkServices(t *testing.T, c cluster) {
	for _, s := range c.services {
		found := false
		for _, d := range c.deployments {
			if !selects(s.Spec.Selector, d) {
				continue
			}
			found = true
			for _, p := range s.Spec.Ports {
				if !declaresPort(d, p.TargetPort.String()) {
					t.Errorf("service %s: target port %s is not a port of %s", s.Name, p.TargetPort.String(), d.Name)
				}
			}
		}
		if !found {
			t.Errorf("service %s selects no deployment", s.Name)
		}
	}
	for _, p := range c.pdbs {
		n := 0
		for _, d := range c.deployments {
			if p.Spec.Selector != nil && selects(p.Spec.Selector.MatchLabels, d) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("PDB %s selects %d deployments", p.Name, n)
		}
	}
}

func declaresPort(d appsv1.Deployment, port string) bool {
	for _, ctr := range d.Spec.Template.Spec.Containers {
		for _, p := range ctr.Ports {
			if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
				return true
			}
		}
	}
	return false
}

// checkScaling: autoscalers target existing Deployments, one autoscaler
// each; a worker's KEDA triggers watch exactly the pending lists of the
// queues it serves; trigger authentications read existing secret keys.
func checkScaling(t *testing.T, c cluster, secrets map[string][]string) {
	scaledBy := map[string]string{}
	target := func(kind, name, by string) *appsv1.Deployment {
		d := deploymentNamed(c, name)
		if kind != "Deployment" || d == nil {
			t.Errorf("%s scales %s %q, which does not exist", by, kind, name)
			return nil
		}
		if prev, ok := scaledBy[name]; ok {
			t.Errorf("%s is scaled by both %s and %s", name, prev, by)
		}
		scaledBy[name] = by
		return d
	}
	for _, h := range c.hpas {
		target(h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name, "HPA "+h.Name)
	}
	for _, s := range c.scaled {
		d := target(s.Spec.ScaleTargetRef.Kind, s.Spec.ScaleTargetRef.Name, "ScaledObject "+s.Name)
		if d == nil {
			continue
		}
		var queues []string
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "WARDEN_WORKER_QUEUES" {
				q, err := config.ParseQueues(e.Value)
				if err != nil {
					t.Fatal(err)
				}
				for name := range q {
					queues = append(queues, pendingList(name))
				}
			}
		}
		var lists []string
		for _, tr := range s.Spec.Triggers {
			if tr.Type != "redis" {
				t.Errorf("%s: trigger type %q", s.Name, tr.Type)
				continue
			}
			lists = append(lists, tr.Metadata["listName"])
			if n, err := strconv.Atoi(tr.Metadata["listLength"]); err != nil || n < 1 {
				t.Errorf("%s: listLength %q", s.Name, tr.Metadata["listLength"])
			}
			if tr.AuthenticationRef == nil {
				t.Errorf("%s: redis trigger without authentication", s.Name)
				continue
			}
			a, ok := c.auths[tr.AuthenticationRef.Name]
			if !ok {
				t.Errorf("%s: TriggerAuthentication %q does not exist", s.Name, tr.AuthenticationRef.Name)
			}
			for _, ref := range a.Spec.SecretTargetRef {
				if !slices.Contains(secrets[ref.Name], ref.Key) {
					t.Errorf("TriggerAuthentication %s reads %s/%s, which secret.example.yaml lacks", a.Name, ref.Name, ref.Key)
				}
			}
		}
		slices.Sort(queues)
		slices.Sort(lists)
		if len(queues) == 0 || !slices.Equal(queues, lists) {
			t.Errorf("%s watches %v, but %s serves %v", s.Name, lists, d.Name, queues)
		}
	}
}

// pendingList is asynq's list of a queue's pending tasks
// (TestAsynqPendingList checks the name on a real Redis).
func pendingList(queue string) string { return fmt.Sprintf("asynq:{%s}:pending", queue) }
