# sbteam-tui for headless work at scale: `eval`, `batch`, `run` (docs/kubernetes.md).
#
#   docker build -t sbteam-tui .
#   docker run --rm -e OPENAI_API_KEY -e E2B_API_KEY -v "$PWD/results:/results" sbteam-tui \
#       eval --sample --out /results/sample
#
# The sandbox is E2B by default here: a container rarely may create the user
# namespaces the local sandbox's bubblewrap needs (it would run NOT ISOLATED).
# Keys come from the environment (a Kubernetes Secret); nothing secret is baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# tini: Ctrl+C / SIGTERM reach sbteam-tui (first: graceful stop, finished results kept);
# bubblewrap: isolation when SBTEAM_SANDBOX=local is used where user namespaces are allowed.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini bubblewrap \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY team ./team
COPY tui ./tui
# Editable, so the bundled data (team/data: example data sets, the eval sample) is
# used where it lies; exact versions from the lock, as the README installs.
RUN pip install -c requirements.lock -e . \
 && sbteam-tui --help >/dev/null

RUN useradd --create-home --uid 10001 sbteam && mkdir -p /results && chown sbteam /results
USER sbteam
ENV SBTEAM_SANDBOX=e2b \
    SBTEAM_HOME=/results/home
VOLUME ["/results"]

ENTRYPOINT ["tini", "--", "sbteam-tui"]
CMD ["eval", "--sample", "--out", "/results/sample"]
