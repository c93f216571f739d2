#!/bin/bash
# Harness self-test: a script that fails without reporting sub-results.
# disks: none
# timeout: 120
echo "about to fail"
exit 1
