package main

import (
	"encoding/json"
	"errors"
	"strings"
)

// defaultVersion is the version of an image referenced without tag or
// digest, as container tools read it.
const defaultVersion = "latest"

// project returns the Dependency-Track project name and version of a
// report: from the title (the bundled templates make it the image
// reference, "<repository>:<tag>"), else from the BOM's subject
// (metadata.component), else from the event (Trivy's ArtifactName, Trivy
// Operator's report.artifact, Aqua's image).
//
// An image reference is split at its tag, the last ':' after the last '/',
// so that a registry port stays in the name (registry:5000/app:1.0 is
// project registry:5000/app, version 1.0), or at its digest.
func project(title, bom string, event []byte) (name, version string, err error) {
	if t := strings.TrimSpace(title); t != "" && !strings.ContainsAny(t, " \t\r\n") {
		name, version = splitImage(t)
	}
	if name == "" {
		name, version = fromBOM(bom)
	}
	if name == "" {
		name, version = fromEvent(event)
	}
	if name == "" {
		return "", "", errors.New("no project name: the title is not an image reference (name:version), and neither the BOM's metadata.component nor the event names the image")
	}
	if version == "" {
		version = defaultVersion
	}
	return name, version, nil
}

// splitImage splits an image reference into name and version: the tag
// when there is one, else the digest, else "".
func splitImage(ref string) (name, version string) {
	name, digest, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(name, ":"); i > 0 && i < len(name)-1 && !strings.Contains(name[i+1:], "/") {
		return name[:i], name[i+1:]
	}
	name = strings.TrimSuffix(name, ":")
	if name == "" {
		return "", ""
	}
	return name, digest
}

// fromBOM reads the name and version of a CycloneDX JSON BOM's subject.
func fromBOM(bom string) (name, version string) {
	var b struct {
		Metadata struct {
			Component struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"component"`
		} `json:"metadata"`
	}
	if json.Unmarshal([]byte(bom), &b) != nil {
		return "", ""
	}
	c := b.Metadata.Component
	if strings.TrimSpace(c.Name) == "" {
		return "", ""
	}
	return strings.TrimSpace(c.Name), strings.TrimSpace(c.Version)
}

// fromEvent reads the scanned image of a Trivy report (ArtifactName), a
// Trivy Operator report (report.artifact.repository and tag or digest) or an
// Aqua scan (image). Values of unexpected types are ignored.
func fromEvent(event []byte) (name, version string) {
	var e map[string]any
	if json.Unmarshal(event, &e) != nil {
		return "", ""
	}
	str := func(m map[string]any, key string) string {
		s, _ := m[key].(string)
		return strings.TrimSpace(s)
	}
	if report, ok := e["report"].(map[string]any); ok {
		if artifact, ok := report["artifact"].(map[string]any); ok && str(artifact, "repository") != "" {
			v := str(artifact, "tag")
			if v == "" {
				v = str(artifact, "digest")
			}
			return str(artifact, "repository"), v
		}
	}
	for _, key := range []string{"ArtifactName", "image"} {
		if ref := str(e, key); ref != "" && !strings.ContainsAny(ref, " \t\r\n") {
			return splitImage(ref)
		}
	}
	return "", ""
}
