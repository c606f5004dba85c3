#!/usr/bin/env bash
# Build the ROS 2 interfaces Confident EQA needs into a Python venv that has the ros-jazzy-* wheels
# (`pip install .[ros]`), for machines without a system ROS 2 install (CI, laptops, pip users).
# On a robot, build interfaces/confident_eqa_interfaces with colcon instead (README, "On a robot").
#
# usage: interfaces/build_interfaces.sh VENV
# Builds confident_eqa_interfaces (the AskQuestion action), and nav2_msgs / tf2_msgs (compat/) only when the
# venv cannot import them. Needs cmake and a C/C++ compiler. Build folders: $BUILD_DIR (default
# VENV/build/confident_eqa_interfaces). Installs into the venv prefix: no environment variables are needed
# afterwards (the wheels' bootstrap puts $VENV/lib on the library path).
set -euo pipefail
V=${1:?usage: build_interfaces.sh VENV}
V=$(cd "$V" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
B=${BUILD_DIR:-$V/build/confident_eqa_interfaces}
PY="$V/bin/python"
DISTRO=jazzy

"$PY" -c "import rclpy" 2>/dev/null || { echo "build_interfaces.sh: $V has no rclpy: pip install '.[ros]' first" >&2; exit 2; }
for tool in cmake c++ make; do
  command -v "$tool" >/dev/null || { echo "build_interfaces.sh: $tool is missing (apt install cmake g++ make)" >&2; exit 2; }
done

# The rosidl toolchain; the meta wheels' dependency lists leave some of it out.
"$V/bin/pip" install -q "ros-$DISTRO-rosidl-default-generators" "ros-$DISTRO-rosidl-core-generators" \
  "ros-$DISTRO-ament-cmake" "ros-$DISTRO-ament-cmake-include-directories" "ros-$DISTRO-ament-cmake-ros" \
  "ros-$DISTRO-ament-cmake-gmock" "ros-$DISTRO-ament-cmake-gtest" "ros-$DISTRO-ament-cmake-pytest" \
  "ros-$DISTRO-python-cmake-module" "ros-$DISTRO-ament-package" catkin_pkg

# The wheels' CMake exports name the include folders of the machine that built them: point them here.
PYINC=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
NPINC=$("$PY" -c "import numpy; print(numpy.get_include())")
grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+' "$V"/share/*/cmake 2>/dev/null | xargs -r sed -i -E \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PYINC#g" \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$NPINC#g"

export AMENT_PREFIX_PATH="$V" CMAKE_PREFIX_PATH="$V" PATH="$V/bin:$PATH"
mkdir -p "$B"
build() {  # build PACKAGE_DIR into the venv prefix
  local src=$1 name
  name=$(basename "$src")
  echo "build_interfaces.sh: building $name (logs in $B/$name.*.log)"
  cmake -S "$src" -B "$B/$name" -DCMAKE_INSTALL_PREFIX="$V" -DCMAKE_PREFIX_PATH="$V" \
    -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$B/$name.configure.log" 2>&1 \
    || { tail -20 "$B/$name.configure.log" >&2; exit 1; }
  cmake --build "$B/$name" -j"$(nproc)" >"$B/$name.build.log" 2>&1 || { tail -20 "$B/$name.build.log" >&2; exit 1; }
  cmake --install "$B/$name" >"$B/$name.install.log" 2>&1 || { tail -20 "$B/$name.install.log" >&2; exit 1; }
}

"$PY" -c "from tf2_msgs.msg import TFMessage" 2>/dev/null || build "$HERE/compat/tf2_msgs"
"$PY" -c "from nav2_msgs.action import NavigateToPose" 2>/dev/null || build "$HERE/compat/nav2_msgs"
build "$HERE/confident_eqa_interfaces"

"$PY" -c "from confident_eqa_interfaces.action import AskQuestion; from nav2_msgs.action import NavigateToPose; \
from tf2_msgs.msg import TFMessage; print('build_interfaces.sh: interfaces OK')"
