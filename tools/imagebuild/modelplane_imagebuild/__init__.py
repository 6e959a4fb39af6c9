"""Builds Modelplane's container image without a Docker daemon.

One image holds every service (one console script each); see the README beside this
package. `tools/image build` assembles three layers (the Debian runtime, the third-party
Python packages, the project's wheel), writes them as an OCI layout and pushes it with
crane. The same source tree gives the same digest.
"""
