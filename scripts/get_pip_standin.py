"""Used by scripts/ansible_test.sh in place of get-pip.py, which cannot be downloaded here.

Bootstraps pip with ensurepip, then installs whatever ansible-test asked for with pip's normal
configuration (ensurepip points PIP_CONFIG_FILE at os.devnull, which would drop the machine's CA settings).
"""

import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
os.environ.pop("PIP_CONFIG_FILE", None)
requested = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *requested]))
