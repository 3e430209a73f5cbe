package deploy_test

import (
	"testing"

	"github.com/oss2s3/oss2s3/transfer"
)

// k8sScaling is the part of the autoscaling manifests the check reads.
type k8sScaling struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicaCount int `yaml:"minReplicaCount"` // KEDA
		MaxReplicaCount int `yaml:"maxReplicaCount"`
		MinReplicas     int `yaml:"minReplicas"` // HPA
		MaxReplicas     int `yaml:"maxReplicas"`
		MinAvailable    int `yaml:"minAvailable"` // PodDisruptionBudget
		Triggers        []struct {
			Type     string            `yaml:"type"`
			Metadata map[string]string `yaml:"metadata"`
		} `yaml:"triggers"`
		Metrics []struct {
			Type     string `yaml:"type"`
			External struct {
				Metric struct {
					Name string `yaml:"name"`
				} `yaml:"metric"`
			} `yaml:"external"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
}

// TestAutoscalingFollowsTheQueue: the KEDA ScaledObject reads the pending
// count of the stream and consumer the workers really use, the HPA
// alternative a series oss2s3 really exports, both scale the Deployment of
// deployment.yaml, and neither goes below what keeps a webhook receiver
// through a node drain (the PodDisruptionBudget).
func TestAutoscalingFollowsTheQueue(t *testing.T) {
	t.Parallel()
	var dep, pdb, keda, hpa k8sScaling
	readYAML(t, "k8s/deployment.yaml", &dep)
	readYAML(t, "k8s/pdb.yaml", &pdb)
	readYAML(t, "k8s/keda-scaledobject.example.yaml", &keda)
	readYAML(t, "k8s/hpa-prometheus.example.yaml", &hpa)

	if keda.Kind != "ScaledObject" || keda.Spec.ScaleTargetRef.Name != dep.Metadata.Name {
		t.Errorf("KEDA: %s scaling %q, want a ScaledObject of %q", keda.Kind, keda.Spec.ScaleTargetRef.Name, dep.Metadata.Name)
	}
	// One trigger per lane: each lane's consumer has a backlog of its own,
	// and KEDA scales on the larger need.
	if len(keda.Spec.Triggers) != len(transfer.Lanes) {
		t.Fatalf("KEDA triggers %+v, want one nats-jetstream trigger per lane (%d)", keda.Spec.Triggers, len(transfer.Lanes))
	}
	for i, l := range transfer.Lanes {
		tr := keda.Spec.Triggers[i]
		if tr.Type != "nats-jetstream" {
			t.Errorf("KEDA trigger %d is %q, want nats-jetstream", i, tr.Type)
		}
		md := tr.Metadata
		if md["stream"] != transfer.JobStream || md["consumer"] != l.Consumer {
			t.Errorf("KEDA trigger %d reads stream %q consumer %q, want %q and the %s lane's %q",
				i, md["stream"], md["consumer"], transfer.JobStream, l.Name, l.Consumer)
		}
		for _, k := range []string{"natsServerMonitoringEndpoint", "account", "lagThreshold"} {
			if md[k] == "" {
				t.Errorf("KEDA trigger %d without %s", i, k)
			}
		}
	}
	if keda.Spec.MinReplicaCount <= pdb.Spec.MinAvailable || keda.Spec.MaxReplicaCount < keda.Spec.MinReplicaCount {
		t.Errorf("KEDA replicas %d-%d, want more than the PDB's minAvailable %d at the least", keda.Spec.MinReplicaCount, keda.Spec.MaxReplicaCount, pdb.Spec.MinAvailable)
	}

	if hpa.Kind != "HorizontalPodAutoscaler" || hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != dep.Metadata.Name {
		t.Errorf("HPA: %s scaling %s %q, want a HorizontalPodAutoscaler of Deployment %q", hpa.Kind, hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name, dep.Metadata.Name)
	}
	if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Type != "External" {
		t.Fatalf("HPA metrics %+v, want one External", hpa.Spec.Metrics)
	}
	if name := hpa.Spec.Metrics[0].External.Metric.Name; !exported(t).names[name] {
		t.Errorf("HPA scales on %q, which oss2s3 does not export", name)
	}
	if hpa.Spec.MinReplicas <= pdb.Spec.MinAvailable || hpa.Spec.MaxReplicas < hpa.Spec.MinReplicas {
		t.Errorf("HPA replicas %d-%d, want more than the PDB's minAvailable %d at the least", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, pdb.Spec.MinAvailable)
	}
}
