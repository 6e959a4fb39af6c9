{{- /* Names, labels and shared fragments of the chart's templates. */ -}}

{{- define "modelplane.labels" -}}
app.kubernetes.io/name: modelplane
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{- define "modelplane.selector" -}}
app.kubernetes.io/name: modelplane
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end }}

{{- /* Cluster-scoped objects are named after the release, so two releases never share one. */ -}}
{{- define "modelplane.clusterName" -}}
{{ .root.Release.Name }}:{{ .service }}
{{- end }}

{{- define "modelplane.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{ $image.repository }}@{{ $image.digest }}
{{- else -}}
{{ $image.repository }}:{{ $image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end }}

{{- /* The DNS names a service's certificate carries: its Service in every spelling. */ -}}
{{- define "modelplane.dnsNames" -}}
{{- $ns := .root.Release.Namespace -}}
{{- list .service (printf "%s.%s" .service $ns) (printf "%s.%s.svc" .service $ns) (printf "%s.%s.svc.%s" .service $ns .root.Values.clusterDomain) | toJson }}
{{- end }}

{{- /* The namespace of the API key Secrets; refused when it is the release namespace. */ -}}
{{- define "modelplane.apiKeyNamespace" -}}
{{- $ns := index .Values.services "gateway-config" "apiKeyNamespace" -}}
{{- if eq $ns .Release.Namespace -}}
{{- fail (printf "services.gateway-config.apiKeyNamespace: %q is the release namespace, whose kubeconfig Secrets gateway-config must not read; name a namespace of its own" $ns) -}}
{{- end -}}
{{ $ns }}
{{- end }}

{{- define "modelplane.tlsSecret" -}}
{{ .service }}-tls
{{- end }}

{{- /* The services the chart runs, and which of them speak gRPC (and so get a certificate). */ -}}
{{- define "modelplane.services" -}}
["cluster-provisioner", "fleet-scheduler", "endpoint-manager", "gateway-config", "cache-hydrator", "activator"]
{{- end }}

{{- define "modelplane.grpcServices" -}}
["cluster-provisioner", "fleet-scheduler", "endpoint-manager", "cache-hydrator", "activator"]
{{- end }}

{{- define "modelplane.tlsDir" -}}
/etc/modelplane/tls
{{- end }}

{{- /* A service's command line (JSON list): the flags its own parser takes. */ -}}
{{- define "modelplane.args" -}}
{{- $v := .root.Values -}}
{{- $own := index $v.services .service -}}
{{- $ns := .root.Release.Namespace -}}
{{- $tls := include "modelplane.tlsDir" . -}}
{{- /* "" binds the pod's own IP (env POD_IP, from the downward API; kubelet expands $(POD_IP)). */ -}}
{{- $bind := $v.bindAddress | default "$(POD_IP)" -}}
{{- $args := list (printf "--status-address=%s:%v" $bind $v.statusPort) (printf "--log-level=%s" $v.logLevel) -}}
{{- /* The activator is no controller: it has no namespace of its own to name. */ -}}
{{- if ne .service "activator" -}}
{{- $args = prepend $args (printf "--namespace=%s" $ns) -}}
{{- end -}}
{{- if has .service (include "modelplane.grpcServices" . | fromJsonArray) -}}
{{- $args = concat $args (list (printf "--tls-cert=%s/tls.crt" $tls) (printf "--tls-key=%s/tls.key" $tls) (printf "--tls-ca=%s/ca.crt" $tls)) -}}
{{- end -}}
{{- if eq .service "fleet-scheduler" -}}
{{- $args = concat $args (list "--in-cluster" (printf "--listen=%s:%v" $bind $own.grpcPort)) -}}
{{- else if eq .service "cluster-provisioner" -}}
{{- $args = append $args (printf "--listen=%s:%v" $bind $own.grpcPort) -}}
{{- else if eq .service "endpoint-manager" -}}
{{- $provisioner := index $v.services "cluster-provisioner" -}}
{{- $args = concat $args (list (printf "--fleet=cluster-provisioner.%s.svc:%v" $ns $provisioner.grpcPort) (printf "--router-image=%s" (include "modelplane.image" .root))) -}}
{{- if $own.scalerPort -}}
{{- $args = append $args (printf "--scaler-address=%s:%v" $bind $own.scalerPort) -}}
{{- end -}}
{{- else if eq .service "cache-hydrator" -}}
{{- $provisioner := index $v.services "cluster-provisioner" -}}
{{- $image := $own.hydrateImage | default (include "modelplane.image" .root) -}}
{{- $args = concat $args (list (printf "--fleet=cluster-provisioner.%s.svc:%v" $ns $provisioner.grpcPort) (printf "--hydrate-image=%s" $image) (printf "--hub=%s" $own.hub)) -}}
{{- else if eq .service "gateway-config" -}}
{{- if eq (int $own.hopPort) (int $own.gatewayPort) -}}
{{- fail (printf "services.gateway-config.hopPort: %v is also gatewayPort; the hop listener needs a port of its own" $own.hopPort) -}}
{{- end -}}
{{- $args = concat $args (list (printf "--gateway-class=%s" $own.gatewayClass) (printf "--gateway-port=%v" $own.gatewayPort) (printf "--hop-port=%v" $own.hopPort) (printf "--https-port=%v" $own.httpsPort) (printf "--api-key-address=%s:%v" $bind $own.apiKeyPort) (printf "--api-key-url=http://gateway-config.%s.svc:%v" $ns $own.apiKeyPort) (printf "--api-key-namespace=%s" (include "modelplane.apiKeyNamespace" .root))) -}}
{{- if $own.backendCAConfigMap -}}
{{- $args = append $args (printf "--backend-ca-configmap=%s" $own.backendCAConfigMap) -}}
{{- end -}}
{{- $args = append $args (printf "--activator-url=http://activator.%s.svc:%v" $ns $v.services.activator.httpPort) -}}
{{- else if eq .service "activator" -}}
{{- $args = append $args (printf "--listen=%s:%v" $bind $own.httpPort) -}}
{{- $manager := index $v.services "endpoint-manager" -}}
{{- if $own.scaler -}}
{{- $args = append $args (printf "--scaler=%s" $own.scaler) -}}
{{- else if $manager.scalerPort -}}
{{- /* Every copy of endpoint-manager keeps the held reports it gets: report to each
       (the headless Service `endpoint-manager-peers` names every ready copy). */ -}}
{{- $args = concat $args (list (printf "--scaler=endpoint-manager.%s.svc:%v" $ns $manager.scalerPort) (printf "--scaler-peers=endpoint-manager-peers.%s.svc" $ns)) -}}
{{- end -}}
{{- end -}}
{{- concat $args $own.extraArgs | toJson -}}
{{- end }}
