"""The product brief's quick start, runnable against any folder of photos.

    .venv/bin/python examples/chromadb_example.py ./photos "cat photo"
    .venv/bin/python examples/chromadb_example.py ./photos --image ./photos/IMG_0001.jpg

Uses the standalone ChromaDBBackend (no library database): the vectors live in
./my_vector_db unless --memory is given. The model comes from IMGSIM_MODEL
(default openai/clip-vit-base-patch32, downloaded on first use).
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imgsim_site.settings")

import django  # noqa: E402

django.setup()

from search.standalone import ChromaDBBackend  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("query", nargs="?", default="cat photo")
    parser.add_argument("--image", type=Path, help="search with this photo instead of text")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--max-images", type=int, default=100)
    parser.add_argument("--memory", action="store_true", help="keep the index in memory only")
    args = parser.parse_args()

    backend = ChromaDBBackend(collection_name="my_images", persist_directory=None if args.memory else "./my_vector_db")
    started = time.time()
    count = backend.add_images_from_directory(args.folder, max_images=args.max_images)
    print(f"Added {count} images in {time.time() - started:.2f}s")

    started = time.time()
    if args.image:
        results = backend.find_similar(query_image_path=args.image, top_k=args.top_k, threshold=args.threshold)
    else:
        results = backend.find_similar(query_text=args.query, top_k=args.top_k, threshold=args.threshold)
    print(f"Search time: {time.time() - started:.3f}s")
    for result in results:
        print(f"{result['filename']}: {result['similarity']:.3f}")

    for duplicate in backend.find_duplicates(similarity_threshold=0.95)[:10]:
        print(
            f"Duplicate: {duplicate['image1_filename']} ≈ {duplicate['image2_filename']} "
            f"(similarity {duplicate['similarity']:.3f})"
        )

    stats = backend.get_stats()
    print(f"Total images: {stats['total_images']}")
    print(f"Average width: {stats.get('avg_width', 'N/A')}")
    print(f"Average height: {stats.get('avg_height', 'N/A')}")
    print(f"Embedding model: {stats['embedding_model']}")


if __name__ == "__main__":
    main()
