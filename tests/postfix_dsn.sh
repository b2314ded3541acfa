#!/bin/sh
# STUB
echo "ok - stub"
