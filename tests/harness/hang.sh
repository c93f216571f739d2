#!/bin/bash
# Harness self-test: a script that never ends must be killed at its timeout.
# disks: none
# timeout: 45
echo "hanging"
sleep 100000
