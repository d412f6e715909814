package cluster

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/postee-dev/postee/core/cluster/clusterpb"
	"github.com/postee-dev/postee/core/config"
)

// A runner's part travels as protobuf, typed field by field: the keys
// postee reads itself (retry, runs-on, enable...) are fields of their own,
// only the plugin's settings are a JSON object, as they are on the way to
// the plugin.

func encodeBootstrapReply(part *Part, refusal string) ([]byte, error) {
	reply := &clusterpb.BootstrapReply{Error: refusal}
	if part != nil {
		pb, err := partToPB(part)
		if err != nil {
			return nil, err
		}
		reply.Part = pb
	}
	return proto.Marshal(reply)
}

func decodeBootstrapReply(data []byte) (part *Part, refusal string, err error) {
	var reply clusterpb.BootstrapReply
	if err := proto.Unmarshal(data, &reply); err != nil {
		return nil, "", err
	}
	if reply.GetError() != "" {
		return nil, reply.GetError(), nil
	}
	if reply.Part == nil {
		return nil, "", nil
	}
	part, err = partFromPB(reply.Part)
	return part, "", err
}

func partToPB(p *Part) (*clusterpb.Part, error) {
	out := &clusterpb.Part{Runner: p.Runner, Filters: p.Filters}
	if c := p.Config; c != nil {
		pc := &clusterpb.Config{File: c.File, Name: c.Name, AquaServer: c.AquaServer}
		for i := range c.Routes {
			r := &c.Routes[i]
			pc.Routes = append(pc.Routes, &clusterpb.Route{
				Pos: posToPB(r.Pos), InputPos: posToPB(r.InputPos), Name: r.Name, Input: r.Input,
				InputFiles: r.InputFiles, Actions: r.Actions, Template: r.Template, SerializeActions: r.SerializeActions,
				Plugins: &clusterpb.RoutePlugins{
					AggregateMessageNumber: int64(r.Plugins.AggregateMessageNumber), AggregateMessageTimeout: r.Plugins.AggregateMessageTimeout,
					UniqueMessageProps: r.Plugins.UniqueMessageProps, UniqueMessageTimeout: r.Plugins.UniqueMessageTimeout,
				},
			})
		}
		for i := range c.Templates {
			t := &c.Templates[i]
			pc.Templates = append(pc.Templates, &clusterpb.Template{
				Pos: posToPB(t.Pos), Name: t.Name, RegoPackage: t.RegoPackage, RegoFile: t.RegoFile, Body: t.Body,
				Url: t.URL, LegacyScanRenderer: t.LegacyScanRenderer, AllowHttp: t.AllowHTTP,
			})
		}
		for i := range c.Actions {
			a := &c.Actions[i]
			settings, err := json.Marshal(a.Settings)
			if err != nil {
				return nil, fmt.Errorf("%s: action %q: settings: %w", a.Pos, a.Name, err)
			}
			pa := &clusterpb.Action{Pos: posToPB(a.Pos), Name: a.Name, Type: a.Type, Enable: a.Enable, RunsOn: a.RunsOn,
				SettingsJson: settings}
			if r := a.Retry; r != nil {
				pa.Retry = &clusterpb.Retry{Attempts: int64(r.Attempts), InitialDelayNanos: int64(r.InitialDelay), MaxDelayNanos: int64(r.MaxDelay)}
			}
			if len(a.KeyPos) > 0 {
				pa.KeyPos = make(map[string]*clusterpb.Pos, len(a.KeyPos))
				for k, p := range a.KeyPos {
					pa.KeyPos[k] = posToPB(p)
				}
			}
			pc.Actions = append(pc.Actions, pa)
		}
		out.Config = pc
	}
	return out, nil
}

func partFromPB(pb *clusterpb.Part) (*Part, error) {
	// Never nil: a runner reads filter files from its part, not from its
	// own directory.
	p := &Part{Runner: pb.GetRunner(), Filters: map[string]string{}}
	for k, v := range pb.GetFilters() {
		p.Filters[k] = v
	}
	pc := pb.GetConfig()
	if pc == nil {
		return p, nil
	}
	c := &config.Config{File: pc.GetFile(), Name: pc.GetName(), AquaServer: pc.GetAquaServer()}
	for _, r := range pc.GetRoutes() {
		pl := r.GetPlugins()
		c.Routes = append(c.Routes, config.Route{
			Pos: posFromPB(r.GetPos()), InputPos: posFromPB(r.GetInputPos()), Name: r.GetName(), Input: r.GetInput(),
			InputFiles: r.GetInputFiles(), Actions: r.GetActions(), Template: r.GetTemplate(), SerializeActions: r.GetSerializeActions(),
			Plugins: config.RoutePlugins{
				AggregateMessageNumber: int(pl.GetAggregateMessageNumber()), AggregateMessageTimeout: pl.GetAggregateMessageTimeout(),
				UniqueMessageProps: pl.GetUniqueMessageProps(), UniqueMessageTimeout: pl.GetUniqueMessageTimeout(),
			},
		})
	}
	for _, t := range pc.GetTemplates() {
		c.Templates = append(c.Templates, config.Template{
			Pos: posFromPB(t.GetPos()), Name: t.GetName(), RegoPackage: t.GetRegoPackage(), RegoFile: t.GetRegoFile(), Body: t.GetBody(),
			URL: t.GetUrl(), LegacyScanRenderer: t.GetLegacyScanRenderer(), AllowHTTP: t.GetAllowHttp(),
		})
	}
	for _, pa := range pc.GetActions() {
		a := config.Action{Pos: posFromPB(pa.GetPos()), Name: pa.GetName(), Type: pa.GetType(), Enable: pa.GetEnable(), RunsOn: pa.GetRunsOn()}
		if len(pa.GetSettingsJson()) > 0 {
			if err := json.Unmarshal(pa.GetSettingsJson(), &a.Settings); err != nil {
				return nil, fmt.Errorf("%s: action %q: settings: %w", a.Pos, a.Name, err)
			}
		}
		if r := pa.GetRetry(); r != nil {
			a.Retry = &config.Retry{Attempts: int(r.GetAttempts()), InitialDelay: time.Duration(r.GetInitialDelayNanos()), MaxDelay: time.Duration(r.GetMaxDelayNanos())}
		}
		if len(pa.GetKeyPos()) > 0 {
			a.KeyPos = make(map[string]config.Pos, len(pa.GetKeyPos()))
			for k, p := range pa.GetKeyPos() {
				a.KeyPos[k] = posFromPB(p)
			}
		}
		c.Actions = append(c.Actions, a)
	}
	p.Config = c
	return p, nil
}

func posToPB(p config.Pos) *clusterpb.Pos {
	if p == (config.Pos{}) {
		return nil
	}
	return &clusterpb.Pos{File: p.File, Line: int32(p.Line)}
}

func posFromPB(p *clusterpb.Pos) config.Pos {
	return config.Pos{File: p.GetFile(), Line: int(p.GetLine())}
}
