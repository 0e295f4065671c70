{{- /*
Traefik has no helper of its own: names, labels, image, pull secrets, IngressClass, the default
certificate Secret, security contexts and the NetworkPolicy switch come from the homeci-lib library
chart (charts/homeci-lib).
*/ -}}
