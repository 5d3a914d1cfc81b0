"""Import MediaPipe's legacy solutions (the API whose face models ship inside the wheel),
quietly: its C++ logging and a protobuf deprecation warning are noise for our users."""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype")

from mediapipe.python.solutions import face_detection, face_mesh  # noqa: E402

__all__ = ["face_detection", "face_mesh"]
