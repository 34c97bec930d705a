#!/usr/bin/env bash
# Regenerates src/TransferSharp/Onnx/Proto/Onnx.g.cs from onnx.proto with protoc from NuGet's
# Google.Protobuf.Tools (the version matching the Google.Protobuf runtime), then shows the diff.
# Exit status: 0 when the committed file equals the regenerated one, 1 when they differ
# (the regenerated file is left in place for review), 2 on a set-up failure.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
proto_dir="$repo/src/TransferSharp/Onnx/Proto"
version="$(sed -n 's/.*PackageVersion Include="Google.Protobuf" Version="\([^"]*\)".*/\1/p' "$repo/Directory.Packages.props")"
[ -n "$version" ] || { echo "no Google.Protobuf version in Directory.Packages.props" >&2; exit 2; }

# A throw-away project outside the repository (so central package management does not apply)
# downloads the tools package into the NuGet cache; nothing is referenced by the build.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/fetch.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageDownload Include="Google.Protobuf.Tools" Version="[$version]" /></ItemGroup>
</Project>
XML
dotnet restore "$work/fetch.csproj" --packages "$work/packages" >/dev/null || { echo "cannot restore Google.Protobuf.Tools $version" >&2; exit 2; }
tools="$work/packages/google.protobuf.tools/$version/tools"
protoc="$tools/linux_x64/protoc"
chmod +x "$protoc"

cp "$proto_dir/Onnx.g.cs" "$work/Onnx.g.cs.committed"
(cd "$proto_dir" && "$protoc" -I. -I"$tools" --csharp_out=. --csharp_opt=internal_access,file_extension=.g.cs onnx.proto)
if diff -u "$work/Onnx.g.cs.committed" "$proto_dir/Onnx.g.cs"; then
  echo "Onnx.g.cs is up to date (protoc $version)."
else
  echo "Onnx.g.cs changed: review the diff above and commit it with onnx.proto." >&2
  exit 1
fi
